//! Compiling a template version's parts into one minijinja environment, and rendering them.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use super::adobe;
use super::limits::{CappedWriter, Progress, RenderLimits};
use super::{RenderInput, Rendered, TemplateContent, TemplateError};

/// The parts, in the order they are compiled and rendered (and the first failure reported). Each is
/// also the name of its template in the environment.
const FROM: &str = "from";
const SUBJECT: &str = "subject";
const TEXT: &str = "text";
const HTML: &str = "html";
/// The parts by their index in the render order (what [`Progress`] holds).
const PARTS: [&str; 4] = [FROM, SUBJECT, TEXT, HTML];

/// The part at `index` of the render order.
pub(super) fn part_name(index: usize) -> &'static str {
    PARTS.get(index).copied().unwrap_or(FROM)
}

/// One template version, compiled: its own environment holding a template per present part, or the
/// error of the first part that does not compile.
pub(super) struct Compiled {
    env: Environment<'static>,
    from: bool,
    subject: bool,
    text: bool,
    html: bool,
    error: Option<TemplateError>,
    limits: RenderLimits,
}

impl Compiled {
    /// Compiles every present part, to be rendered under `limits`; a syntax error is kept and returned
    /// by every [`Compiled::render`].
    pub(super) fn new(content: &TemplateContent, limits: &RenderLimits) -> Self {
        let mut env = Environment::new();
        // Every render of a part stops after this many instructions (see `limits.rs`).
        env.set_fuel(Some(limits.max_fuel));
        // Only the `html` part is escaped, whatever its content looks like.
        env.set_auto_escape_callback(|name| {
            if name == HTML {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Absent variables, and attributes of absent values (`ctx.address.city` with no `address`),
        // render as empty strings instead of failing.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // A JSON `null` in `ctx` renders as nothing rather than the word `none`.
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        // Message bodies are rendered as written, final newline included.
        env.set_keep_trailing_newline(true);

        let mut compiled = Compiled {
            env,
            from: false,
            subject: false,
            text: false,
            html: false,
            error: None,
            limits: *limits,
        };
        let parts = [
            (FROM, &content.from),
            (SUBJECT, &content.subject),
            (TEXT, &content.text),
            (HTML, &content.html),
        ];
        for (field, source) in parts {
            let Some(source) = source else { continue };
            let source = match adobe::translate(source) {
                Ok(source) => source.into_owned(),
                Err(e) => {
                    compiled.error = Some(TemplateError {
                        field,
                        line: Some(e.line),
                        message: e.message,
                    });
                    break;
                }
            };
            if let Err(e) = compiled.env.add_template_owned(field, source) {
                compiled.error = Some(template_error(field, &e));
                break;
            }
            match field {
                FROM => compiled.from = true,
                SUBJECT => compiled.subject = true,
                TEXT => compiled.text = true,
                _ => compiled.html = true,
            }
        }
        compiled
    }

    /// Renders every present part for `input`, each under the limits; the first part that fails is
    /// reported. `progress` is told which part is being rendered.
    pub(super) fn render(
        &self,
        input: &RenderInput<'_>,
        progress: &Progress,
    ) -> Result<Rendered, TemplateError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let context = context(input);
        let part = |index: usize, present: bool| {
            progress.set(index);
            self.part(PARTS[index], present, &context)
        };
        Ok(Rendered {
            from: part(0, self.from)?,
            subject: part(1, self.subject)?,
            text: part(2, self.text)?,
            html: part(3, self.html)?,
        })
    }

    fn part(
        &self,
        field: &'static str,
        present: bool,
        context: &Value,
    ) -> Result<Option<String>, TemplateError> {
        if !present {
            return Ok(None);
        }
        let template = self
            .env
            .get_template(field)
            .map_err(|e| template_error(field, &e))?;
        let mut out = CappedWriter::new(self.limits.max_output_bytes);
        match template.render_captured_to(context, &mut out) {
            Ok(_captured) => Ok(Some(out.into_string())),
            Err(e) if out.overflowed() => Err(TemplateError {
                field,
                line: e.line(),
                message: self.limits.output_message(),
            }),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(TemplateError {
                field,
                line: e.line(),
                message: self.limits.fuel_message(),
            }),
            Err(e) => Err(template_error(field, &e)),
        }
    }
}

/// The variables of a render: `ctx` and the event's addresses; an absent one is left out, so that it is
/// undefined (renders empty) rather than `none`.
fn context(input: &RenderInput<'_>) -> Value {
    let mut vars: BTreeMap<&'static str, Value> = BTreeMap::new();
    vars.insert("ctx", Value::from_serialize(input.ctx));
    let optional = [
        ("email", input.email),
        ("mobilePhone", input.mobile_phone),
        ("language", input.language),
        ("externalId", input.external_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            vars.insert(name, Value::from(value));
        }
    }
    Value::from(vars)
}

/// A minijinja error as a [`TemplateError`] of `field`: a syntax error by its detail alone
/// (`unexpected end of input, expected end of block`), others by their kind and detail
/// (`unknown filter: filter nope is unknown`).
fn template_error(field: &'static str, error: &minijinja::Error) -> TemplateError {
    let message = match (error.kind(), error.detail()) {
        (ErrorKind::SyntaxError, Some(detail)) => detail.to_owned(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    TemplateError {
        field,
        line: error.line(),
        message,
    }
}
