//! Joining two byte streams (an upgraded client connection and its tunnel stream, or a tunnel
//! stream and the app's TCP connection), with buffers sized for bulk transfer.

use tokio::io::{AsyncRead, AsyncWrite};

/// Copy buffer per direction of a joined stream.
pub const SPLICE_BUFFER: usize = 64 << 10;

/// Joins two byte streams until both directions end (each side's write half is shut down when
/// the other side's read half ends); the bytes each way.
pub async fn splice<A, B>(mut a: A, mut b: B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, SPLICE_BUFFER, SPLICE_BUFFER).await
}
