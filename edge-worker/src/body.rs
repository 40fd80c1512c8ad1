//! Message bodies as shared bytes: cloning a [`Body`] shares it (a reference count), and a
//! host may keep the bytes on its side of a boundary ([`HeldBytes`]), so that a worker that
//! only forwards a body never copies it. The bytes are read only where they are transformed
//! (projection, coding, hashing): dereferencing a held body reads it once, and its clones
//! share what was read.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// Bytes a host holds for the worker (a stored entry's body, an upstream response's body),
/// known to it by a handle: the wasm component's `body` resource.
pub trait HeldBytes: fmt::Debug + Send + Sync {
    /// How many bytes, without reading them.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads the bytes into this side (a copy across the boundary).
    fn read(&self) -> Bytes;
    /// The holder itself, so an adapter can hand its handle back untouched.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The holder, owned, so an adapter can move its handle instead of sharing it.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// A request or response body.
#[derive(Clone, Default)]
pub struct Body(Repr);

#[derive(Clone)]
enum Repr {
    Bytes(Bytes),
    Held(Arc<Held>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Bytes(Bytes::new())
    }
}

struct Held {
    holder: Box<dyn HeldBytes>,
    read: OnceLock<Bytes>,
}

impl Body {
    /// An empty body.
    pub const fn new() -> Self {
        Body(Repr::Bytes(Bytes::new()))
    }

    /// A body whose bytes `holder` keeps.
    pub fn held(holder: impl HeldBytes + 'static) -> Self {
        Body(Repr::Held(Arc::new(Held {
            holder: Box::new(holder),
            read: OnceLock::new(),
        })))
    }

    /// Its length, without reading held bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Bytes(bytes) => bytes.len(),
            Repr::Held(held) => held.holder.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties it (a HEAD response keeps its fields, not its content).
    pub fn clear(&mut self) {
        self.0 = Repr::Bytes(Bytes::new());
    }

    /// The bytes (reading held bytes once).
    pub fn as_slice(&self) -> &[u8] {
        self
    }

    /// The bytes as a shared buffer (reading held bytes once).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Bytes(bytes) => bytes.clone(),
            Repr::Held(held) => held.bytes().clone(),
        }
    }

    /// The bytes in `range` (a byte range answer), sharing this body's buffer. Held bytes are
    /// read first: the host's `body` resource has no slice call, and ranges are rare next to
    /// whole hits.
    pub fn slice(&self, range: impl std::ops::RangeBounds<usize>) -> Body {
        Body(Repr::Bytes(self.to_bytes().slice(range)))
    }

    /// The host's holder when the bytes are held: an adapter hands the same handle back
    /// instead of copying the bytes (read or not, they are the same bytes).
    pub fn holder(&self) -> Option<&dyn HeldBytes> {
        match &self.0 {
            Repr::Held(held) => Some(held.holder.as_ref()),
            Repr::Bytes(_) => None,
        }
    }

    /// Whether the host holds the bytes.
    pub fn is_held(&self) -> bool {
        self.holder().is_some()
    }

    /// The host's holder, when the bytes are held and this is the last reference to them:
    /// the handle can then move back to the host instead of being shared and dropped.
    pub fn into_holder(self) -> Result<Box<dyn HeldBytes>, Body> {
        match self.0 {
            Repr::Held(held) => match Arc::try_unwrap(held) {
                Ok(held) => Ok(held.holder),
                Err(shared) => Err(Body(Repr::Held(shared))),
            },
            bytes => Err(Body(bytes)),
        }
    }
}

impl Held {
    fn bytes(&self) -> &Bytes {
        self.read.get_or_init(|| self.holder.read())
    }
}

/// Reads held bytes on first use: code that dereferences a body is code that reads it.
impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Bytes(bytes) => bytes,
            Repr::Held(held) => held.bytes(),
        }
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Bytes(bytes) => write!(f, "Body({} bytes)", bytes.len()),
            Repr::Held(held) => write!(f, "Body({} bytes held by {:?})", self.len(), held.holder),
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && **self == **other
    }
}

impl Eq for Body {}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Body {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Body {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl PartialEq<&str> for Body {
    fn eq(&self, other: &&str) -> bool {
        **self == *other.as_bytes()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body(Repr::Bytes(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body(Repr::Bytes(bytes.into()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::from(text.into_bytes())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body(Repr::Bytes(Bytes::from_static(bytes)))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Body {
    fn from(bytes: &'static [u8; N]) -> Self {
        Body(Repr::Bytes(Bytes::from_static(bytes)))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body(Repr::Bytes(Bytes::from_static(text.as_bytes())))
    }
}

impl From<Body> for Bytes {
    fn from(body: Body) -> Self {
        body.to_bytes()
    }
}

impl From<Body> for Vec<u8> {
    fn from(body: Body) -> Self {
        body.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counted {
        reads: Arc<AtomicUsize>,
    }

    impl HeldBytes for Counted {
        fn len(&self) -> usize {
            5
        }
        fn read(&self) -> Bytes {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Bytes::from_static(b"hello")
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
            self
        }
    }

    #[test]
    fn clones_share_the_bytes() {
        let body = Body::from(vec![7u8; 4096]);
        let copy = body.clone();
        assert_eq!(body.as_ptr(), copy.as_ptr(), "a clone is the same buffer");
    }

    #[test]
    fn held_bytes_are_read_once_and_only_when_dereferenced() {
        let reads = Arc::new(AtomicUsize::new(0));
        let body = Body::held(Counted {
            reads: reads.clone(),
        });
        let copy = body.clone();
        assert_eq!((body.len(), body.is_empty()), (5, false));
        assert!(copy.is_held() && copy.holder().is_some());
        assert_eq!(reads.load(Ordering::Relaxed), 0, "length needs no read");
        assert_eq!(&*body, b"hello");
        assert_eq!(copy, b"hello");
        assert_eq!(reads.load(Ordering::Relaxed), 1, "clones share the read");
        assert!(copy.is_held(), "the handle still names the same bytes");
        assert!(body.into_holder().is_err(), "a clone still shares it");
        assert!(copy.clone().into_holder().is_err());
        assert!(
            copy.into_holder().is_ok(),
            "the last reference gives the holder up"
        );
        assert!(
            Body::from(vec![1u8]).into_holder().is_err(),
            "no holder for own bytes"
        );
    }
}
