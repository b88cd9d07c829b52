//! KTAP: the guest reports tests in the kernel's test format, the host reads
//! it back from the console, where kernel lines may be interleaved.

/// One test result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Test number from the `ok`/`not ok` line.
    pub number: usize,
    /// Test name.
    pub name: String,
    /// Passed (or skipped).
    pub ok: bool,
    /// Skipped, with the reason.
    pub skip: Option<String>,
    /// `#` diagnostic lines printed before the result.
    pub diagnostics: Vec<String>,
}

/// A parsed KTAP report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The plan (`1..N`), if one was seen.
    pub plan: Option<usize>,
    /// The results in order.
    pub results: Vec<TestResult>,
    /// The tests the guest said it started (`# N/T NAME ...`), by number:
    /// a test that never reported is named by it.
    pub started: Vec<(usize, String)>,
}

impl Report {
    /// Tests the plan announced but that never reported.
    pub fn missing(&self) -> Vec<usize> {
        let plan = self.plan.unwrap_or(0);
        (1..=plan)
            .filter(|n| !self.results.iter().any(|r| r.number == *n))
            .collect()
    }

    /// The name of planned test `n`, if the guest said it started it.
    pub fn started_name(&self, n: usize) -> Option<&str> {
        self.started
            .iter()
            .find(|(number, _)| *number == n)
            .map(|(_, name)| name.as_str())
    }

    /// Whether every planned test ran and none failed.
    pub fn passed(&self) -> bool {
        // A plan of no test is no success: a filter matched nothing.
        self.plan.is_some_and(|n| n > 0)
            && self.missing().is_empty()
            && self.results.iter().all(|r| r.ok)
    }
}

/// Parses the top-level KTAP lines out of console output.
pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Report {
    let mut report = Report::default();
    let mut started = false;
    let mut diagnostics = Vec::new();
    for line in lines {
        // Kernel lines carry a timestamp; KTAP lines from the agent do not.
        let line = line.trim_end();
        if line.starts_with('[') {
            continue;
        }
        if line == "KTAP version 1" {
            started = true;
            report = Report::default();
            diagnostics.clear();
            continue;
        }
        if !started {
            continue;
        }
        if let Some(n) = line.strip_prefix("1..") {
            report.plan = n.trim().parse().ok();
        } else if let Some(d) = line.strip_prefix("# ") {
            if let Some(start) = started_line(d) {
                report.started.push(start);
            }
            diagnostics.push(d.to_string());
        } else if let Some((ok, rest)) = line
            .strip_prefix("ok ")
            .map(|r| (true, r))
            .or_else(|| line.strip_prefix("not ok ").map(|r| (false, r)))
        {
            let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let Ok(number) = number.parse() else { continue };
            let (name, directive) = match rest.split_once(" # ") {
                Some((name, d)) => (name, Some(d)),
                None => (rest, None),
            };
            let skip = directive
                .and_then(|d| d.strip_prefix("SKIP"))
                .map(|r| r.trim().to_string());
            report.results.push(TestResult {
                number,
                name: name.trim().to_string(),
                ok,
                skip,
                diagnostics: std::mem::take(&mut diagnostics),
            });
        }
    }
    report
}

/// A test's start as the suite announces it: `N/T NAME ...`.
fn started_line(d: &str) -> Option<(usize, String)> {
    let (count, rest) = d.split_once(' ')?;
    let (n, _total) = count.split_once('/')?;
    let name = rest.strip_suffix(" ...")?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    Some((n.parse().ok()?, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_between_kernel_lines() {
        let text = "boot noise\nKTAP version 1\n1..3\n[    1.2] nsfilter: loaded\n\
                    # ping failed\nnot ok 1 first\nok 2 second\nok 3 third # SKIP no ipv6\n";
        let r = parse(text.lines());
        assert_eq!(r.plan, Some(3));
        assert_eq!(r.results.len(), 3);
        assert!(!r.results[0].ok);
        assert_eq!(r.results[0].diagnostics, vec!["ping failed"]);
        assert_eq!(r.results[2].skip.as_deref(), Some("no ipv6"));
        assert!(!r.passed());
    }

    #[test]
    fn missing_tests_fail_the_report() {
        let r = parse("KTAP version 1\n1..2\nok 1 a\n".lines());
        assert_eq!(r.missing(), vec![2]);
        assert!(!r.passed());
        assert!(parse("KTAP version 1\n1..1\nok 1 a\n".lines()).passed());
        assert!(!parse("no report at all".lines()).passed());
    }

    #[test]
    fn a_test_that_never_reported_is_named_by_its_start() {
        let r = parse(
            "KTAP version 1\n1..2\n# 1/2 a ...\nok 1 a\n# 2/2 hangs_here ...\n# 3 of 4 done\n"
                .lines(),
        );
        assert_eq!(r.missing(), vec![2]);
        assert_eq!(r.started_name(2), Some("hangs_here"));
        assert_eq!(r.started_name(1), Some("a"));
        assert_eq!(r.started.len(), 2);
    }
}
