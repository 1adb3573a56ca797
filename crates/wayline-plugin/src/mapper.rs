//! Mappers (typed `A → B` functions) and the shortest-chain search between value types.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use prost_types::Any;

use crate::{PluginError, Value, value::type_name};

/// The erased body of a mapper: one packed value in, one out.
#[async_trait]
pub trait MapFn: Send + Sync {
    /// Converts `input`.
    async fn map(&self, input: Any) -> Result<Any, PluginError>;
}

struct TypedMap<A, B, F>(F, std::marker::PhantomData<fn(A) -> B>);

#[async_trait]
impl<A: Value, B: Value, F> MapFn for TypedMap<A, B, F>
where
    F: Fn(A) -> Result<B, PluginError> + Send + Sync,
{
    async fn map(&self, input: Any) -> Result<Any, PluginError> {
        let a = A::from_any(&input)?;
        Ok((self.0)(a)?.to_any())
    }
}

/// A named, typed conversion `input → output` between value types.
#[derive(Clone)]
pub struct Mapper {
    /// Unique name; ties between equally short chains go to the smaller names.
    pub name: String,
    /// Full type name of the input.
    pub input: String,
    /// Full type name of the output.
    pub output: String,
    f: Arc<dyn MapFn>,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mapper({} : {} -> {})",
            self.name, self.input, self.output
        )
    }
}

impl Mapper {
    /// A mapper from a typed function.
    pub fn new<A: Value, B: Value>(
        name: impl Into<String>,
        f: impl Fn(A) -> Result<B, PluginError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            input: A::TYPE_NAME.to_owned(),
            output: B::TYPE_NAME.to_owned(),
            f: Arc::new(TypedMap(f, std::marker::PhantomData)),
        }
    }

    /// A mapper from an erased body (used for external plugins' mappers).
    pub fn erased(
        name: impl Into<String>,
        input: impl Into<String>,
        output: impl Into<String>,
        f: Arc<dyn MapFn>,
    ) -> Self {
        Self {
            name: name.into(),
            input: input.into(),
            output: output.into(),
            f,
        }
    }

    /// Runs the mapper.
    pub async fn apply(&self, input: Any) -> Result<Any, PluginError> {
        self.f.map(input).await.map_err(|e| match e {
            PluginError::Failed(m) => PluginError::Failed(format!("mapper `{}`: {m}", self.name)),
            e => e,
        })
    }
}

/// The mappers to run, in order, to convert one type into another (empty when equal).
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// The mappers in application order.
    pub steps: Vec<Mapper>,
}

impl Chain {
    /// Number of mappers.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when no conversion is needed.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The mapper names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|m| m.name.as_str()).collect()
    }

    /// Runs every mapper in turn.
    pub async fn apply(&self, mut value: Any) -> Result<Any, PluginError> {
        for m in &self.steps {
            value = m.apply(value).await?;
        }
        Ok(value)
    }
}

/// No chain of mappers converts `from` into `to`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no mapper converts `{from}` into `{to}`; {known}")]
pub struct NoChain {
    /// The type there is.
    pub from: String,
    /// The type needed.
    pub to: String,
    /// `known mappers: a (X -> Y), …` or `no mappers are registered`.
    known: String,
}

/// Every registered mapper, by name.
#[derive(Debug, Clone, Default)]
pub struct MapperRegistry {
    by_name: BTreeMap<String, Mapper>,
    /// Mapper names by input type, in name order (rebuilt on insert).
    edges: HashMap<String, Vec<String>>,
}

impl MapperRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mapper; a later mapper with the same name replaces the earlier one.
    pub fn add(&mut self, m: Mapper) {
        if let Some(old) = self.by_name.insert(m.name.clone(), m.clone())
            && let Some(v) = self.edges.get_mut(&old.input)
        {
            v.retain(|n| *n != old.name);
        }
        let v = self.edges.entry(m.input.clone()).or_default();
        let pos = v.binary_search(&m.name).unwrap_or_else(|p| p);
        v.insert(pos, m.name);
    }

    /// Every mapper, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Mapper> {
        self.by_name.values()
    }

    /// Number of mappers.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The shortest chain from `from` to `to` (empty when they are equal or `to` is `*`, the
    /// any-type); among equally short chains, the one whose mapper
    /// names come first (breadth-first search visiting each type's mappers in name order).
    pub fn find_chain(&self, from: &str, to: &str) -> Result<Chain, NoChain> {
        if from == to || to == crate::value::ANY_TYPE {
            return Ok(Chain::default());
        }
        let mut prev: HashMap<&str, &Mapper> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(t) = queue.pop_front() {
            for name in self.edges.get(t).into_iter().flatten() {
                let m = &self.by_name[name];
                let out = m.output.as_str();
                if out == from || prev.contains_key(out) {
                    continue;
                }
                prev.insert(out, m);
                if out == to {
                    let mut steps = vec![m.clone()];
                    let mut cur = m.input.as_str();
                    while cur != from {
                        let p = prev[cur];
                        steps.push(p.clone());
                        cur = p.input.as_str();
                    }
                    steps.reverse();
                    return Ok(Chain { steps });
                }
                queue.push_back(out);
            }
        }
        Err(self.no_chain(from, to))
    }

    fn no_chain(&self, from: &str, to: &str) -> NoChain {
        let known = if self.by_name.is_empty() {
            "no mappers are registered".to_owned()
        } else {
            let list: Vec<String> = self
                .by_name
                .values()
                .map(|m| format!("{} ({} -> {})", m.name, m.input, m.output))
                .collect();
            format!("known mappers: {}", list.join(", "))
        };
        NoChain {
            from: from.to_owned(),
            to: to.to_owned(),
            known,
        }
    }

    /// Converts `value` into type `to` through the shortest chain.
    pub async fn convert(&self, value: Any, to: &str) -> Result<Any, PluginError> {
        let chain = self
            .find_chain(type_name(&value), to)
            .map_err(|e| PluginError::Input(e.to_string()))?;
        chain.apply(value).await
    }
}

#[cfg(test)]
mod tests;
