//! CI-native output shared by `verify`, `check` and `diff`: JUnit XML (`--junit FILE`, the
//! format GitLab, Jenkins and GitHub test reporters read: one `<testcase>` per file, check or
//! tensor, `<failure message=...>` with the reason) and GitHub Actions workflow annotations
//! (`::error file=...::message`, printed when `GITHUB_ACTIONS=true`).
//!
//! Everything from files (names, paths, messages) is escaped: XML's five special characters
//! become entities, characters XML 1.0 cannot carry at all (most C0 controls) become
//! `\u{..}` text; annotation values are escaped as GitHub's toolkit does (`%`, CR, LF, and in
//! properties also `:` and `,`).

use std::path::Path;

use llama_manifests::verify::{FileResult, Status};

use crate::args::ReportArgs;

/// One JUnit test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Test name (a file, a check, a tensor).
    pub name: String,
    /// Group (`verify`, `check`, `diff`).
    pub classname: String,
    /// Seconds.
    pub time: f64,
    /// `Some((message, details))` when it failed.
    pub failure: Option<(String, String)>,
    /// `Some(message)` when it could not be checked at all.
    pub error: Option<String>,
    /// The file a failure points at (for annotations).
    pub file: Option<String>,
}

impl Case {
    /// A passed case.
    pub fn ok(classname: &str, name: &str) -> Case {
        Case {
            name: name.into(),
            classname: classname.into(),
            time: 0.0,
            failure: None,
            error: None,
            file: None,
        }
    }

    /// A failed case.
    pub fn failed(classname: &str, name: &str, message: &str) -> Case {
        Case {
            failure: Some((message.into(), message.into())),
            ..Case::ok(classname, name)
        }
    }
}

/// One `<testsuite>`.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Suite name (`llama-tool verify`, ...).
    pub name: String,
    /// Seconds.
    pub time: f64,
    /// Its cases.
    pub cases: Vec<Case>,
    /// Free text for `<system-out>` (the summary).
    pub out: String,
}

/// Escape text or an attribute value for XML 1.0.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            // Not allowed in XML 1.0 even as references.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                o.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => o.push(c),
        }
    }
    o
}

/// The JUnit XML document of `suites`.
pub fn render(suites: &[Suite]) -> String {
    let count = |f: &dyn Fn(&Case) -> bool| -> usize {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(c))
            .count()
    };
    let tests = count(&|_| true);
    let failures = count(&|c| c.failure.is_some());
    let errors = count(&|c| c.error.is_some() && c.failure.is_none());
    let time: f64 = suites.iter().map(|s| s.time).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"llama-tool\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">\n"
    ));
    for s in suites {
        let f = s.cases.iter().filter(|c| c.failure.is_some()).count();
        let e = s
            .cases
            .iter()
            .filter(|c| c.error.is_some() && c.failure.is_none())
            .count();
        x.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"0\" time=\"{:.3}\">\n",
            xml_escape(&s.name),
            s.cases.len(),
            s.time
        ));
        for c in &s.cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&c.classname),
                xml_escape(&c.name),
                c.time
            );
            match (&c.failure, &c.error) {
                (Some((msg, text)), _) => x.push_str(&format!(
                    "{open}>\n      <failure type=\"failure\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml_escape(msg),
                    xml_escape(text)
                )),
                (None, Some(msg)) => x.push_str(&format!(
                    "{open}>\n      <error type=\"error\" message=\"{}\">{}</error>\n    </testcase>\n",
                    xml_escape(msg),
                    xml_escape(msg)
                )),
                (None, None) => x.push_str(&format!("{open}/>\n")),
            }
        }
        if !s.out.is_empty() {
            x.push_str(&format!(
                "    <system-out>{}</system-out>\n",
                xml_escape(&s.out)
            ));
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Write `suite` as JUnit XML to `path` (atomically: never a partial file under the name;
/// an existing file only with `force`).
pub fn write_junit(path: &Path, force: bool, suite: &Suite) -> anyhow::Result<()> {
    let xml = render(std::slice::from_ref(suite));
    crate::args::write_file_output(path, force, xml.as_bytes())?;
    Ok(())
}

/// When a command fails before it has results (exit 2), still leave a JUnit file with one
/// `<error>` case naming why, so the CI's test report shows the failure instead of a missing
/// file; and annotate it in GitHub Actions.
pub fn write_error(ci: &ReportArgs, command: &str, e: &anyhow::Error) {
    let msg = format!("{e:#}");
    let mut c = Case::ok(command, command);
    c.error = Some(msg.clone());
    let suite = Suite {
        name: format!("llama-tool {command}"),
        time: 0.0,
        cases: vec![c],
        out: String::new(),
    };
    if let Some(path) = &ci.junit {
        // The command's own error is the one reported; a failed write adds nothing to it.
        let _ = write_junit(path, ci.force, &suite);
    }
    annotate(&suite, ci.json);
}

/// Whether we run inside GitHub Actions (`GITHUB_ACTIONS=true`).
pub fn github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escape an annotation's message (GitHub toolkit `escapeData`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape an annotation property such as `file` or `title` (toolkit `escapeProperty`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `::error ...::message` line of a failed case.
pub fn annotation(c: &Case) -> Option<String> {
    let (level, msg) = match (&c.failure, &c.error) {
        (Some((m, _)), _) => ("error", m),
        (None, Some(m)) => ("error", m),
        (None, None) => return None,
    };
    let mut props = vec![format!(
        "title={}",
        escape_property(&format!("llama-tool {} {}", c.classname, c.name))
    )];
    if let Some(f) = &c.file {
        props.insert(0, format!("file={}", escape_property(f)));
    }
    Some(format!(
        "::{level} {}::{}",
        props.join(","),
        escape_data(msg)
    ))
}

/// Print annotations for the failed cases when running in GitHub Actions: on stdout, where
/// the runner reads workflow commands, or on stderr (which it reads too) when stdout carries
/// a `--json` document.
pub fn annotate(suite: &Suite, json: bool) {
    if !github_actions() {
        return;
    }
    for line in suite.cases.iter().filter_map(annotation) {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// `verify`'s results: one case per file (or tensor set).
pub fn verify_suite(results: &[FileResult], seconds: f64, summary: &str) -> Suite {
    let cases = results
        .iter()
        .map(|r| {
            let mut c = Case::ok("verify", &r.name);
            c.time = r.seconds;
            c.file = Some(r.name.clone());
            let fail = |why: String| Some((why.clone(), why));
            let why = crate::cmd::verify::problem(&r.status);
            match (&r.status, why) {
                (Status::Ok, _) => {}
                (Status::Error(e), _) => c.error = Some(e.clone()),
                (Status::Missing, _) => c.failure = fail("file is missing".into()),
                (Status::Unlisted, _) => c.failure = fail("file is listed by no manifest".into()),
                (status, why) => {
                    let word = status.word().to_ascii_lowercase();
                    c.failure = fail(format!("{word}: {}", why.unwrap_or_default()))
                }
            }
            c
        })
        .collect();
    Suite {
        name: "llama-tool verify".into(),
        time: seconds,
        cases,
        out: summary.into(),
    }
}

/// `verify`'s JUnit file (when asked) and annotations (in GitHub Actions): called from
/// `verify`'s common `report()`, so every verify mode gets them.
pub fn verify_outputs(
    ci: &ReportArgs,
    results: &[FileResult],
    seconds: f64,
    failed: usize,
) -> anyhow::Result<()> {
    let summary = format!("{} files, {failed} failed", results.len());
    let suite = verify_suite(results, seconds, &summary);
    if let Some(path) = &ci.junit {
        write_junit(path, ci.force, &suite)?;
    }
    annotate(&suite, ci.json);
    Ok(())
}

/// `check`'s result: one case per check (hyper-parameters, KLD, top-1, ...).
pub fn check_suite(r: &crate::cmd::check::CheckResult) -> Suite {
    let cand = r.candidate.path.display().to_string();
    let cases = r
        .checks
        .iter()
        .map(|g| {
            let mut c = if g.pass {
                Case::ok("check", &g.name)
            } else {
                Case::failed("check", &g.name, &g.detail)
            };
            c.file = Some(cand.clone());
            c
        })
        .collect();
    Suite {
        name: format!(
            "llama-tool check {} {}",
            r.reference.path.display(),
            r.candidate.path.display()
        ),
        time: 0.0,
        cases,
        out: format!(
            "{} tokens; mean KLD {:.6}; top-1 {:.3}%; max |dlogit| {:.6}; {}",
            r.tokens,
            r.metrics.kld_mean,
            r.metrics.top1_agreement * 100.0,
            r.metrics.max_abs_diff,
            if r.pass { "PASS" } else { "FAIL" }
        ),
    }
}

/// Annotate `check`'s failures (GitHub Actions only).
pub fn annotate_check(r: &crate::cmd::check::CheckResult, json: bool) {
    annotate(&check_suite(r), json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped_in_xml_and_annotations() {
        let name = "a<b>&\"c'\u{1}\nd:e,f%";
        let mut c = Case::failed("verify", name, "bad\r\nthing 100%");
        c.file = Some(name.into());
        let xml = render(&[Suite {
            name: "s".into(),
            time: 0.0,
            cases: vec![c.clone()],
            out: String::new(),
        }]);
        assert!(
            xml.contains("a&lt;b&gt;&amp;&quot;c&apos;\\u{1}&#10;d:e,f%"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'));
        let a = annotation(&c).unwrap();
        assert!(
            a.starts_with("::error file=a<b>&\"c'\u{1}%0Ad%3Ae%2Cf%25,title="),
            "{a}"
        );
        assert!(a.ends_with("::bad%0D%0Athing 100%25"), "{a}");
        assert!(!a.contains('\n'));
    }
}
