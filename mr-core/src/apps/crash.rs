//! `nocrash` and `crash`: the lab's worker-failure test applications.

use super::push_decimal;
use crate::app::{App, AppError, Emitter, FaultPlan};

/// The lab's `nocrash`: map emits `a` = file name, `b` = its length, `c` = the contents'
/// length and `d` = `xyzzy`; reduce sorts the values and joins them with spaces. Its output
/// is the reference for the crash test.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCrash;

impl App for NoCrash {
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        let mut number = Vec::with_capacity(20);
        out.emit(b"a", filename.as_bytes());
        push_decimal(&mut number, filename.len() as u64);
        out.emit(b"b", &number);
        number.clear();
        push_decimal(&mut number, contents.len() as u64);
        out.emit(b"c", &number);
        out.emit(b"d", b"xyzzy");
        Ok(())
    }

    fn reduce(&self, _key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        for (i, value) in sorted.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(value);
        }
        Ok(())
    }
}

/// The lab's `crash`: [`NoCrash`]'s output, run by workers that crash or stall at random
/// ([`FaultPlan`]; the worker draws once per task, where the lab draws once per call).
#[derive(Debug, Clone, Copy)]
pub struct Crash {
    plan: FaultPlan,
}

impl Crash {
    /// The lab's fault rates ([`FaultPlan::LAB`]).
    pub fn lab() -> Self {
        Crash {
            plan: FaultPlan::LAB,
        }
    }

    /// Custom fault rates (for example, shorter stalls to keep a test fast).
    pub fn with_plan(plan: FaultPlan) -> Self {
        Crash { plan }
    }
}

impl App for Crash {
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        NoCrash.map(filename, contents, out)
    }

    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        NoCrash.reduce(key, values, out)
    }

    fn faults(&self) -> Option<FaultPlan> {
        Some(self.plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::sequential;

    #[test]
    fn nocrash_output_matches_the_lab_format() {
        let out = sequential(
            &NoCrash,
            [("../pg-x.txt", &b"hello"[..]), ("y", &b""[..])],
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a ../pg-x.txt y\nb 1 11\nc 0 5\nd xyzzy xyzzy\n"
        );
    }

    #[test]
    fn crash_has_the_same_output_and_injects_faults() {
        let inputs = [("f", &b"abc"[..])];
        assert_eq!(
            sequential(&Crash::lab(), inputs, false).unwrap(),
            sequential(&NoCrash, inputs, false).unwrap()
        );
        assert_eq!(Crash::lab().faults(), Some(FaultPlan::LAB));
        assert_eq!(NoCrash.faults(), None);
    }
}
