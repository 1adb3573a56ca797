//! The runner on its own: an in-process server, the real runner loop and executor, and fake
//! plugins (the `null` plugin plus a `text` builder whose value only a mapper makes deployable).

#![allow(unreachable_pub)]

mod harness;

mod pipeline;
mod plan;
mod prune;
mod tls;
