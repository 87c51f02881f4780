//! Progress bars for a pull on a terminal: one per layer while it downloads, plus a
//! total. Disabled, every bar is hidden and costs a few atomic adds per chunk.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::image::spec::Descriptor;

pub(crate) struct Progress {
    multi: Option<MultiProgress>,
    total: ProgressBar,
    /// Counts what is not shown (the config).
    unseen: ProgressBar,
}

/// The bars one blob download moves.
pub(crate) struct Bars<'a> {
    pub layer: ProgressBar,
    total: &'a ProgressBar,
}

impl Bars<'_> {
    pub fn inc(&self, n: u64) {
        self.layer.inc(n);
        self.total.inc(n);
    }

    /// Forgets the progress of a failed attempt before a retry.
    pub fn restart(&self) {
        self.total.dec(self.layer.position());
        self.layer.set_position(0);
    }
}

const LAYER_TEMPLATE: &str =
    "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}";
const TOTAL_TEMPLATE: &str =
    "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}";

impl Progress {
    /// Bars drawn on stderr when `enabled`; `total_bytes` is what is left to download.
    pub fn new(enabled: bool, total_bytes: u64) -> Progress {
        if !enabled {
            return Progress {
                multi: None,
                total: ProgressBar::hidden(),
                unseen: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let total = multi.add(
            ProgressBar::new(total_bytes)
                .with_style(style(TOTAL_TEMPLATE))
                .with_prefix("total"),
        );
        Progress {
            multi: Some(multi),
            total,
            unseen: ProgressBar::hidden(),
        }
    }

    /// A bar for one blob, above the total.
    pub fn blob(&self, descriptor: &Descriptor) -> Bars<'_> {
        let layer = match &self.multi {
            None => ProgressBar::hidden(),
            Some(multi) => multi.insert_before(
                &self.total,
                ProgressBar::new(descriptor.size)
                    .with_style(style(LAYER_TEMPLATE))
                    .with_prefix(descriptor.digest.encoded()[..12].to_string()),
            ),
        };
        Bars {
            layer,
            total: &self.total,
        }
    }

    /// Hidden bars for a blob that is not shown (the config).
    pub fn hidden(&self) -> Bars<'_> {
        Bars {
            layer: ProgressBar::hidden(),
            total: &self.unseen,
        }
    }

    pub fn finish(&self) {
        if self.multi.is_some() {
            self.total.finish();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
