//! The streaming application: any external command as mapper or reducer, as Hadoop
//! Streaming does, so jobs can be written in any language.
//!
//! * The mapper runs once per map task (`sh -c MAPPER`) with the input file on stdin and
//!   `MAP_INPUT_FILE` set to its name. Each stdout line is a pair: the key up to the first
//!   tab, the value after it (no tab: the whole line is the key, the value is empty).
//! * The reducer runs once per reduce task (`sh -c REDUCER`) with the partition's pairs on
//!   stdin as `key<TAB>value` lines sorted by key. Each stdout line becomes an output line,
//!   with its first tab turned into the space of the `key value` format.
//! * A command that exits with a non-zero status fails the job with its stderr.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use stepwise_mr::{App, AppError, Emitter};

/// Runs external commands as mapper and reducer.
#[derive(Debug, Clone)]
pub struct Streaming {
    mapper: String,
    reducer: String,
}

impl Streaming {
    /// Shell commands for map and reduce.
    pub fn new(mapper: &str, reducer: &str) -> Self {
        Streaming {
            mapper: mapper.to_owned(),
            reducer: reducer.to_owned(),
        }
    }
}

/// Runs `sh -c command` with `input` on stdin; returns its stdout.
fn run(command: &str, input: &[u8], env: &[(&str, &str)]) -> Result<Vec<u8>, AppError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AppError(format!("cannot start `{command}`: {e}")))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Feed stdin and drain stderr on their own threads so neither pipe can fill up and
    // block the command while we read its stdout.
    let (out, err, fed) = std::thread::scope(|s| {
        let feeder = s.spawn(move || match stdin.as_mut() {
            // A command that stops reading early (like `head`) closes the pipe: not an error.
            Some(pipe) => match pipe.write_all(input) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            },
            None => Ok(()),
        });
        let errors = s.spawn(move || {
            let mut buf = Vec::new();
            if let Some(pipe) = stderr.as_mut() {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        });
        let mut out = Vec::new();
        let read = stdout.as_mut().map(|p| p.read_to_end(&mut out));
        let fed = feeder.join().unwrap_or(Ok(()));
        let err = errors.join().unwrap_or_default();
        (read.map(|r| r.map(|_| out)), err, fed)
    });
    let status = child
        .wait()
        .map_err(|e| AppError(format!("`{command}`: {e}")))?;
    let tail = String::from_utf8_lossy(&err);
    let tail = tail.trim();
    if !status.success() {
        return Err(AppError(format!("`{command}` failed ({status}): {tail}")));
    }
    fed.map_err(|e| AppError(format!("`{command}`: writing its input: {e}")))?;
    match out {
        Some(Ok(out)) => Ok(out),
        Some(Err(e)) => Err(AppError(format!("`{command}`: reading its output: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Splits a line at its first tab.
fn split_pair(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b'\t') {
        Some(tab) => (&line[..tab], &line[tab + 1..]),
        None => (line, &[]),
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

impl App for Streaming {
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        let stdout = run(&self.mapper, contents, &[("MAP_INPUT_FILE", filename)])?;
        for line in lines(&stdout) {
            let (key, value) = split_pair(line);
            out.emit(key, value);
        }
        Ok(())
    }

    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let pairs: Vec<(&[u8], &[u8])> = values.iter().map(|&v| (key, v)).collect();
        let stdout = self.run_reducer(&pairs)?;
        // One key in: the reducer's first line carries its value.
        if let Some(line) = lines(&stdout).next() {
            out.extend_from_slice(split_pair(line).1);
        }
        Ok(())
    }

    fn reduce_partition(
        &self,
        pairs: &[(&[u8], &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<(), AppError> {
        let stdout = self.run_reducer(pairs)?;
        for line in lines(&stdout) {
            let (key, value) = split_pair(line);
            out.extend_from_slice(key);
            if line.len() > key.len() {
                out.push(b' ');
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

impl Streaming {
    /// Runs the reducer over `key<TAB>value` lines; returns its stdout.
    fn run_reducer(&self, pairs: &[(&[u8], &[u8])]) -> Result<Vec<u8>, AppError> {
        let mut input = Vec::new();
        for (key, value) in pairs {
            input.extend_from_slice(key);
            input.push(b'\t');
            input.extend_from_slice(value);
            input.push(b'\n');
        }
        run(&self.reducer, &input, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_mr::sequential;

    #[test]
    fn word_count_with_shell_tools_matches_the_builtin() {
        let app = Streaming::new(
            "tr -cs 'A-Za-z' '\\n' | awk 'NF { print $0 \"\\t1\" }'",
            "awk -F '\\t' '{ n[$1] += $2 } END { for (k in n) print k \"\\t\" n[k] }' | sort",
        );
        let text = b"the cat, the dog; The END";
        let got = sequential(&app, [("a", &text[..])], false).unwrap();
        let want = sequential(&stepwise_mr::apps::WordCount, [("a", &text[..])], false).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn map_sees_the_file_name_and_failures_are_reported() {
        let app = Streaming::new("echo \"$MAP_INPUT_FILE\"", "cat");
        let got = sequential(&app, [("name.txt", &b""[..])], false).unwrap();
        // No tab: the line is the key and the value is empty, written as `key `, as the
        // lab formats "%v %v".
        assert_eq!(got, b"name.txt \n");
        let bad = Streaming::new("echo oops >&2; exit 3", "cat");
        let err = sequential(&bad, [("x", &b"data"[..])], false).unwrap_err();
        assert!(err.0.contains("oops") && err.0.contains('3'), "{err}");
    }

    #[test]
    fn a_mapper_that_ignores_its_input_is_fine() {
        let big = vec![b'x'; 1 << 20];
        let app = Streaming::new("printf 'k\\tv\\n'", "cat");
        let got = sequential(&app, [("x", &big[..])], false).unwrap();
        assert_eq!(got, b"k v\n");
    }
}
