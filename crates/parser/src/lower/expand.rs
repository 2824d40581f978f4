//! Expanding words against a stage's environment during lowering, and what expansion reports:
//! an expansion error at the place it stopped, and UndefinedVar (once per instruction and
//! variable).

use std::collections::{BTreeSet, HashSet};

use super::{Lowerer, StageOut};
use crate::ast::{Instruction, Word};
use crate::shell::ShellError;
use crate::span::Diagnostic;
use crate::suggest;

/// An expansion error as a diagnostic at the place in `w` where the expansion stopped.
pub(super) fn expansion_error(w: &Word, e: &ShellError, hint: &str) -> Diagnostic {
    let mut span = w.span;
    // The word's text is its source text when it is one piece of one line: point into it.
    if span.len == w.text.len()
        && !w.text.contains('\n')
        && let Some(before) = w.text.get(..e.offset.min(w.text.len()))
    {
        span.offset += before.len();
        span.col += before.chars().count() as u32;
        span.len = w.text.len() - before.len();
    }
    Diagnostic::error(span, e.to_string()).with_hint(match e.limit {
        Some(_) => "the expansion limits stop runaway variables; expand in smaller steps",
        None => hint,
    })
}

/// `s` with its first word (the instruction keyword) upper-cased.
fn uppercase_cmd(s: &str) -> String {
    match s.split_once(' ') {
        Some((a, b)) => format!("{} {b}", a.to_uppercase()),
        None => s.to_uppercase(),
    }
}

impl Lowerer<'_> {
    /// `w` expanded against the stage environment, UndefinedVar reported for `ins`; `None` (with
    /// an error recorded) when the expansion fails.
    pub(super) fn expand(&mut self, out: &StageOut, ins: &Instruction, w: &Word) -> Option<String> {
        match self
            .lexer
            .expand_within(&w.text, &out.env, &mut self.budget)
        {
            Ok(e) => {
                self.undefined(out, ins, &e.unset);
                Some(e.value)
            }
            Err(e) => {
                self.error(expansion_error(
                    w,
                    &e,
                    "check the quotes and ${…} references",
                ));
                None
            }
        }
    }

    /// Reports UndefinedVar for the variables of `unset` that `ins` used, unless declared with
    /// ARG or already reported for `ins`.
    pub(super) fn undefined(
        &mut self,
        out: &StageOut,
        ins: &Instruction,
        unset: &BTreeSet<String>,
    ) {
        for v in unset {
            let at = std::ptr::from_ref(ins) as usize;
            if self.undefined_reported.0 != at {
                self.undefined_reported = (at, HashSet::new());
            }
            if out.arg_keys.contains(v) || !self.undefined_reported.1.insert(v.clone()) {
                continue;
            }
            let mut msg = format!("Usage of undefined variable '${v}'");
            if self.suggestions_left > 0 {
                self.suggestions_left -= 1;
                if let Some(s) = suggest::closest(v, out.env.keys(), true) {
                    msg.push_str(&format!(" (did you mean ${s}?)"));
                }
            }
            if self.df.directives.check.is_none()
                || crate::CheckConfig::parse(
                    self.df.directives.check.as_deref().unwrap_or_default(),
                )
                .map(|c| c.enabled("UndefinedVar", false))
                .unwrap_or(true)
            {
                self.warnings.push(
                    Diagnostic::check("UndefinedVar", ins.span, msg)
                        .with_hint_opt(crate::checks::rule_url("UndefinedVar")),
                );
            }
        }
    }

    /// The instruction's text as progress shows it: expanded (with `raw`, quotes kept and unset
    /// variables left as written), keyword upper-cased.
    pub(super) fn describe_text(&mut self, out: &StageOut, ins: &Instruction, raw: bool) -> String {
        let mut lex = self.lexer;
        if raw {
            lex.raw_quotes = true;
            lex.skip_unset = true;
        }
        let text = lex
            .expand_within(&ins.original, &out.env, &mut self.budget)
            .map(|e| e.value)
            .unwrap_or_else(|_| ins.original.clone());
        uppercase_cmd(&text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::test_support::NoImages;
    use super::super::{LowerOptions, lower_with_warnings};

    /// `ENV A=$X B=$X` reported UndefinedVar twice; BuildKit reports each variable once per
    /// instruction.
    #[test]
    fn undefined_var_is_reported_once_per_instruction_and_variable() {
        let src = "FROM scratch\nENV A=$X B=$X\nLABEL a=$Y b=${Y}\nENV C=$X\n";
        let parsed = crate::parse(src);
        let opts = LowerOptions::for_host("Dockerfile");
        let l = lower_with_warnings(&parsed.dockerfile, &opts, &NoImages).unwrap();
        let lines: Vec<(u32, &str)> = l
            .warnings
            .iter()
            .map(|w| (w.span.line, w.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3, 4]);
    }
}
