//! What the command prints: results on stdout as text or one JSON document, errors and
//! progress on stderr.

use std::io::{self, Write};
use std::time::Duration;

use cachy::{Error, ErrorKind};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::Failure;

/// When progress bars are drawn, always on stderr.
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// Only when stderr is a terminal (and `TERM` is not `dumb`), so that a log or a pipe
    /// gets no escape codes.
    #[default]
    Auto,
    /// Even when stderr is not a terminal.
    Always,
    /// Never.
    Never,
}

/// How results, errors and progress are shown.
pub(crate) struct Output {
    json: bool,
    progress: ProgressMode,
}

impl Output {
    pub(crate) fn new(json: bool, progress: ProgressMode) -> Self {
        Output { json, progress }
    }

    /// Print a command's result: `json` with `--json`, else `text` (nothing when empty).
    pub(crate) fn print(&self, text: &str, json: Value) -> Result<(), Failure> {
        let line = if self.json {
            format!("{json}\n")
        } else if text.is_empty() {
            return Ok(());
        } else {
            format!("{text}\n")
        };
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
        {
            // A reader that stopped early (`cachy keys | head`) wanted no more.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Failure(Error::backend("cannot write to stdout", e))),
            Ok(()) => Ok(()),
        }
    }

    /// Tell a person what a result means, on stderr, in text mode only (`--json` output
    /// says it in its document): a miss, say, which prints nothing on stdout.
    pub(crate) fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// Print `error` on stderr: a line of text, or with `--json` one JSON document.
    pub(crate) fn error(&self, error: &Error) {
        if self.json {
            let document = json!({
                "error": {
                    "kind": error.kind().name(),
                    "message": error.message(),
                    "store": error.store(),
                    "key": error.key(),
                    "field": error.field(),
                    "cause": std::error::Error::source(error).map(ToString::to_string),
                }
            });
            eprintln!("{document}");
        } else {
            eprintln!("cachy: {error}");
        }
    }

    /// A bar of `length` steps drawn with `template` (indicatif's).
    pub(crate) fn bar(&self, length: u64, template: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        ProgressBar::with_draw_target(Some(length), self.target()).with_style(style)
    }

    /// A spinner counting `what` (`{pos} keys scanned`), for a walk of unknown length.
    pub(crate) fn counter(&self, what: &str) -> ProgressBar {
        self.ticking(
            &format!("{{spinner}} {{pos}} {what} [{{elapsed}}]"),
            String::new(),
        )
    }

    /// A spinner showing `message`, for work that gives no progress of its own.
    pub(crate) fn spinner(&self, message: String) -> ProgressBar {
        self.ticking("{spinner} {msg} [{elapsed}]", message)
    }

    fn ticking(&self, template: &str, message: String) -> ProgressBar {
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let spinner = ProgressBar::with_draw_target(None, self.target())
            .with_style(style)
            .with_message(message);
        // Drawn at once, not at the first tick: the work may be done before it.
        spinner.tick();
        // Ticks keep the spinner turning while the store is busy and nothing advances it.
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    }

    fn target(&self) -> ProgressDrawTarget {
        match self.progress {
            ProgressMode::Auto => ProgressDrawTarget::stderr(),
            ProgressMode::Always => {
                ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 20)
            }
            ProgressMode::Never => ProgressDrawTarget::hidden(),
        }
    }
}

/// A failure for the store `store`, which cannot do what `message` says.
pub(crate) fn unsupported(store: &str, message: String) -> Failure {
    Failure(Error::new(ErrorKind::InvalidInput, message).with_store(store))
}
