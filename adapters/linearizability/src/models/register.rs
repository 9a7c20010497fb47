//! A single read/write register.

use std::fmt::Debug;
use std::hash::Hash;

use crate::model::Model;

/// A register holding one value of type `V`, starting at a given value.
///
/// Reads must return the value of the latest write; writes always succeed. There is one
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register<V> {
    initial: V,
}

impl<V> Register<V> {
    /// A register whose initial value is `initial`.
    pub fn new(initial: V) -> Self {
        Self { initial }
    }
}

/// A register operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterInput<V> {
    /// Read the value.
    Read,
    /// Replace the value.
    Write(V),
}

/// A register reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterOutput<V> {
    /// The value read.
    Value(V),
    /// The write was done.
    Ack,
}

impl<V: Clone + Eq + Hash + Debug> Model for Register<V> {
    type State = V;
    type Input = RegisterInput<V>;
    type Output = RegisterOutput<V>;
    type Key = ();

    fn init(&self) -> V {
        self.initial.clone()
    }

    fn step(
        &self,
        state: &V,
        input: &RegisterInput<V>,
        output: Option<&RegisterOutput<V>>,
    ) -> Option<V> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(state.clone()),
            (RegisterInput::Read, Some(RegisterOutput::Value(v))) if v == state => {
                Some(state.clone())
            }
            // A read of another value, or a read answered with an `Ack`.
            (RegisterInput::Read, Some(_)) => None,
            (RegisterInput::Write(v), None | Some(RegisterOutput::Ack)) => Some(v.clone()),
            (RegisterInput::Write(_), Some(RegisterOutput::Value(_))) => None,
        }
    }

    fn partition(&self, _input: &RegisterInput<V>) {}

    fn is_read_only(&self, input: &RegisterInput<V>, _output: Option<&RegisterOutput<V>>) -> bool {
        matches!(input, RegisterInput::Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let r = Register::new(0u8);
        let read = RegisterInput::Read;
        assert_eq!(r.step(&0, &read, Some(&RegisterOutput::Value(0))), Some(0));
        assert_eq!(r.step(&0, &read, Some(&RegisterOutput::Value(1))), None);
        assert_eq!(r.step(&0, &read, Some(&RegisterOutput::Ack)), None);
        assert_eq!(r.step(&3, &read, None), Some(3));
        let write = RegisterInput::Write(5);
        assert_eq!(r.step(&0, &write, Some(&RegisterOutput::Ack)), Some(5));
        assert_eq!(r.step(&0, &write, None), Some(5));
        assert_eq!(r.step(&0, &write, Some(&RegisterOutput::Value(5))), None);
    }
}
