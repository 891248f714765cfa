//! Where a walk over a JSON document is: a JSON pointer that grows and shrinks one token at a
//! time without allocating (`PointerBuf::pop_back` returns the token it removes as an owned
//! string, one allocation per step back).

use jsonptr::{Pointer, PointerBuf, Token};

/// A JSON pointer kept as its encoded text.
#[derive(Debug, Default)]
pub struct WalkPath {
    text: String,
}

/// Where to [`WalkPath::back`] to after a step.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

impl WalkPath {
    /// The root.
    pub fn root() -> WalkPath {
        WalkPath::default()
    }

    /// Steps into a member.
    pub fn key(&mut self, key: &str) -> Mark {
        let mark = Mark(self.text.len());
        self.text.push('/');
        self.text.push_str(Token::new(key).encoded());
        mark
    }

    /// Steps into an item.
    pub fn index(&mut self, index: usize) -> Mark {
        use std::fmt::Write;
        let mark = Mark(self.text.len());
        // Writing into a String cannot fail.
        let _ = write!(self.text, "/{index}");
        mark
    }

    /// Steps back to where `mark` was taken.
    pub fn back(&mut self, mark: Mark) {
        self.text.truncate(mark.0);
    }

    pub fn is_root(&self) -> bool {
        self.text.is_empty()
    }

    /// The encoded pointer's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pointer, borrowed. Every step encodes its token, so the text is always a valid
    /// pointer; the check that `Pointer::parse` makes allocates nothing.
    pub fn pointer(&self) -> &Pointer {
        Pointer::parse(&self.text).unwrap_or(Pointer::root())
    }

    /// The pointer, owned.
    pub fn to_buf(&self) -> PointerBuf {
        self.pointer().to_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_encode_their_tokens_and_step_back_exactly() {
        let mut path = WalkPath::root();
        assert!(path.is_root());
        let a = path.key("a/b");
        let b = path.index(12);
        let c = path.key("~x");
        assert_eq!(path.as_str(), "/a~1b/12/~0x");
        assert_eq!(path.pointer(), PointerBuf::from_tokens(["a/b", "12", "~x"]).as_ptr());
        path.back(c);
        assert_eq!(path.as_str(), "/a~1b/12");
        path.back(b);
        path.key("机密");
        assert_eq!(path.to_buf(), PointerBuf::from_tokens(["a/b", "机密"]));
        path.back(a);
        assert!(path.is_root());
    }
}
