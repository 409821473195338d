//! What the command prints: results on stdout as text or one JSON document, errors and
//! progress on stderr.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use cachy::inspect::{OnProgress, Progress};
use cachy::{Error, ErrorKind};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

/// A failure, printed on stderr with exit code 2.
pub(crate) struct Failure(pub(crate) cachy::Error);

impl From<cachy::Error> for Failure {
    fn from(e: cachy::Error) -> Self {
        Failure(e)
    }
}

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

    /// A list printed as its items come: one per line, or with `--json` the object `head`
    /// with the items under `field`. Neither the text nor the items are kept (a million
    /// keys would take that much memory again).
    pub(crate) fn list(&self, head: serde_json::Map<String, Value>, field: &str) -> List {
        let mut list = List {
            stdout: io::BufWriter::new(io::stdout()),
            json: self.json,
            items: 0,
            failed: None,
        };
        if self.json {
            let head = Value::Object(head).to_string();
            let open = head.strip_suffix('}').unwrap_or(&head);
            let comma = if open.len() > 1 { "," } else { "" };
            let opened = format!("{open}{comma}{}:[", Value::from(field));
            list.write(|stdout| stdout.write_all(opened.as_bytes()));
        }
        list
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

    /// A spinner showing `what` until the work reports progress: then a bar where the work
    /// knows its length, else a count of the items seen.
    pub(crate) fn progress(&self, what: &str) -> Shown {
        let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, self.target())
            .with_style(style)
            .with_message(what.to_owned());
        // Drawn at once, not at the first tick: the work may be done before it.
        bar.tick();
        // Ticks keep the spinner turning while the store is busy and nothing advances it.
        bar.enable_steady_tick(Duration::from_millis(100));
        Shown {
            bar,
            what: what.to_owned(),
        }
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

/// Progress drawn on stderr while a store works, from its [`Progress`] reports.
pub(crate) struct Shown {
    bar: ProgressBar,
    what: String,
}

impl Shown {
    /// The callback the store reports its progress to.
    pub(crate) fn on_progress(&self) -> OnProgress {
        let (bar, what) = (self.bar.clone(), self.what.clone());
        Arc::new(move |progress: Progress| {
            bar.set_message(format!("{what}: {} seen", progress.items));
            if let Some(total) = progress.total {
                if bar.length().is_none() {
                    let style =
                        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed}]")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> ");
                    bar.set_style(style);
                }
                bar.set_length(total);
                bar.set_position(progress.done);
            }
        })
    }

    /// Erase the progress: the work is done.
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// A list being printed (see [`Output::list`]).
pub(crate) struct List {
    stdout: io::BufWriter<io::Stdout>,
    json: bool,
    items: u64,
    /// The first failure to write; nothing more is written after it.
    failed: Option<io::Error>,
}

impl List {
    fn write(&mut self, write: impl FnOnce(&mut io::BufWriter<io::Stdout>) -> io::Result<()>) {
        if self.failed.is_none()
            && let Err(e) = write(&mut self.stdout)
        {
            self.failed = Some(e);
        }
    }

    /// Print `item`.
    pub(crate) fn item(&mut self, item: &str) {
        let (json, first) = (self.json, self.items == 0);
        self.items += 1;
        self.write(|stdout| {
            if json {
                let comma = if first { "" } else { "," };
                write!(stdout, "{comma}{}", Value::from(item))
            } else {
                writeln!(stdout, "{item}")
            }
        });
    }

    /// End the list (the JSON document is closed only when every item came).
    pub(crate) fn finish(mut self, complete: bool) -> Result<(), Failure> {
        let json = self.json;
        self.write(|stdout| {
            if json && complete {
                writeln!(stdout, "]}}")?;
            }
            stdout.flush()
        });
        match self.failed {
            // A reader that stopped early (`cachy keys | head`) wanted no more.
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Some(e) => Err(Failure(Error::backend("cannot write to stdout", e))),
            None => Ok(()),
        }
    }
}
