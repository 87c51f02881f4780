//! The uncompressed layer stream under tar: decompression, the DiffID hash and the byte
//! caps, either inline ([`Inline`], for `apply_layer`) or on a second thread feeding a
//! bounded channel of buffers ([`Threaded`]: inflate on one core, syscalls on the other).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use super::{Progress, UnpackError};
use crate::image::digest::{Digest, HashingReader};
use crate::image::spec::LayerCompression;

/// Size of one buffer handed from the decompressing thread to the applying one.
const CHUNK: usize = 256 << 10;
/// Buffers in flight: with [`CHUNK`], 2 MiB of read-ahead.
pub(crate) const DEPTH: usize = 8;
/// Read buffer for the compressed blob.
const BLOB_BUFFER: usize = 128 << 10;
/// zstd frames may ask for windows up to 2 GiB; 128 MiB is zstd's own default maximum.
#[cfg(feature = "zstd")]
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Progress is reported every this many compressed bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// The uncompressed bytes of one layer, as tar reads them.
pub(crate) trait LayerStream: Read {
    /// Reads the rest to EOF (trailing bytes are part of the DiffID) and returns the
    /// digest and length of the whole uncompressed stream.
    fn finish(&mut self) -> Result<(Digest, u64), UnpackError>;
    /// The stream's own failure behind the last read error (a cap, bad compression),
    /// which explains it better than tar's view of it.
    fn take_fault(&mut self) -> Option<UnpackError>;
}

/// The most uncompressed bytes a layer may have, and which limit that is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap {
    pub bytes: u64,
    /// The image-wide limit is the smaller one (so exceeding it is `ImageTooBig`).
    pub image: bool,
    pub limit: u64,
}

impl Cap {
    fn error(self) -> UnpackError {
        if self.image {
            UnpackError::ImageTooBig { limit: self.limit }
        } else {
            UnpackError::LayerTooBig { limit: self.limit }
        }
    }
}

/// Hashes and caps an already uncompressed stream in the caller's thread.
pub(crate) struct Inline<R: Read> {
    /// `None` once finished.
    reader: Option<HashingReader<R>>,
    cap: Cap,
    fault: Option<UnpackError>,
}

impl<R: Read> Inline<R> {
    pub(crate) fn new(reader: R, cap: Cap) -> Self {
        Inline {
            reader: Some(HashingReader::new(reader)),
            cap,
            fault: None,
        }
    }
}

impl<R: Read> Read for Inline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(0);
        };
        let n = reader.read(buf)?;
        if reader.len() > self.cap.bytes {
            self.fault = Some(self.cap.error());
            return Err(io::Error::other("layer over its size limit"));
        }
        Ok(n)
    }
}

impl<R: Read> LayerStream for Inline<R> {
    fn finish(&mut self) -> Result<(Digest, u64), UnpackError> {
        let mut sink = vec![0u8; 64 << 10];
        loop {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(self.take_fault().unwrap_or(UnpackError::Tar(e))),
            }
        }
        let reader = self.reader.take().expect("finish is called once");
        reader.drain().map_err(UnpackError::Tar)
    }

    fn take_fault(&mut self) -> Option<UnpackError> {
        self.fault.take()
    }
}

/// One message from the decompressing thread.
pub(crate) enum Msg {
    Data {
        buf: Vec<u8>,
        bytes_in: u64,
    },
    /// The stream's digest and length (or why it failed), and the blob's size.
    End {
        result: Result<(Digest, u64), UnpackError>,
        bytes_in: u64,
    },
}

/// Counts the compressed bytes read, for progress.
struct Counting {
    file: File,
    count: Rc<Cell<u64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The body of the decompressing thread: decompress, hash, cap, send buffers; the last
/// message is always `End` (unless the receiver is gone).
pub(crate) fn produce(
    blob: File,
    compression: LayerCompression,
    cap: Cap,
    tx: SyncSender<Msg>,
    recycled: Receiver<Vec<u8>>,
) {
    let count = Rc::new(Cell::new(0));
    let result = pump(blob, compression, cap, &count, &tx, &recycled);
    let _ = tx.send(Msg::End {
        result,
        bytes_in: count.get(),
    });
}

fn pump(
    blob: File,
    compression: LayerCompression,
    cap: Cap,
    count: &Rc<Cell<u64>>,
    tx: &SyncSender<Msg>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(Digest, u64), UnpackError> {
    let input = BufReader::with_capacity(
        BLOB_BUFFER,
        Counting {
            file: blob,
            count: count.clone(),
        },
    );
    let mut reader = HashingReader::new(decoder(input, compression)?);
    loop {
        let mut buf = match recycled.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        buf.resize(CHUNK, 0);
        let n = fill(&mut reader, &mut buf).map_err(UnpackError::Decompress)?;
        if reader.len() > cap.bytes {
            return Err(cap.error());
        }
        if n == 0 {
            return reader.drain().map_err(UnpackError::Decompress);
        }
        buf.truncate(n);
        let msg = Msg::Data {
            buf,
            bytes_in: count.get(),
        };
        if tx.send(msg).is_err() {
            return Err(UnpackError::Cancelled);
        }
    }
}

fn decoder<'a, R: BufRead + 'a>(
    input: R,
    compression: LayerCompression,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    Ok(match compression {
        LayerCompression::None => Box::new(input),
        LayerCompression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        LayerCompression::Zstd => zstd_decoder(input)?,
    })
}

#[cfg(feature = "zstd")]
fn zstd_decoder<'a, R: BufRead + 'a>(input: R) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(UnpackError::Decompress)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(UnpackError::Decompress)?;
    Ok(Box::new(decoder))
}

#[cfg(not(feature = "zstd"))]
fn zstd_decoder<'a, R: BufRead + 'a>(_input: R) -> Result<Box<dyn Read + 'a>, UnpackError> {
    Err(UnpackError::ZstdDisabled)
}

/// Reads until `buf` is full or EOF; returns the bytes read.
pub(crate) fn fill<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// The applying side of the channel: hands the buffers to tar and reports progress.
pub(crate) struct Threaded<'p> {
    rx: Receiver<Msg>,
    recycle: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    end: Option<(Digest, u64)>,
    fault: Option<UnpackError>,
    layer: usize,
    bytes_in: u64,
    reported: u64,
    progress: &'p mut dyn FnMut(Progress),
}

impl<'p> Threaded<'p> {
    pub(crate) fn new(
        rx: Receiver<Msg>,
        recycle: SyncSender<Vec<u8>>,
        layer: usize,
        progress: &'p mut dyn FnMut(Progress),
    ) -> Self {
        Threaded {
            rx,
            recycle,
            buf: Vec::new(),
            pos: 0,
            end: None,
            fault: None,
            layer,
            bytes_in: 0,
            reported: 0,
            progress,
        }
    }

    /// Waits for the next buffer; `false` at the end of the stream.
    fn next_buf(&mut self) -> io::Result<bool> {
        if self.end.is_some() {
            return Ok(false);
        }
        if self.fault.is_some() {
            return Err(io::Error::other("layer stream failed"));
        }
        let old = std::mem::take(&mut self.buf);
        if old.capacity() > 0 {
            let _ = self.recycle.try_send(old);
        }
        self.pos = 0;
        match self.rx.recv() {
            Ok(Msg::Data { buf, bytes_in }) => {
                self.bytes_in = bytes_in;
                if bytes_in >= self.reported + PROGRESS_STEP {
                    self.reported = bytes_in;
                    (self.progress)(Progress {
                        layer: self.layer,
                        bytes_in,
                    });
                }
                self.buf = buf;
                Ok(true)
            }
            Ok(Msg::End { result, bytes_in }) => {
                self.bytes_in = bytes_in;
                match result {
                    Ok(end) => {
                        self.end = Some(end);
                        Ok(false)
                    }
                    Err(e) => {
                        self.fault = Some(e);
                        Err(io::Error::other("layer stream failed"))
                    }
                }
            }
            Err(_) => {
                self.fault = Some(UnpackError::Decompress(io::Error::other(
                    "the decompressing thread stopped",
                )));
                Err(io::Error::other("layer stream failed"))
            }
        }
    }
}

impl Read for Threaded<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if !self.next_buf()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl LayerStream for Threaded<'_> {
    fn finish(&mut self) -> Result<(Digest, u64), UnpackError> {
        self.pos = self.buf.len();
        loop {
            match self.next_buf() {
                Ok(true) => self.pos = self.buf.len(),
                Ok(false) => break,
                Err(e) => return Err(self.take_fault().unwrap_or(UnpackError::Tar(e))),
            }
        }
        let end = self.end.clone().expect("the stream ended");
        (self.progress)(Progress {
            layer: self.layer,
            bytes_in: self.bytes_in,
        });
        Ok(end)
    }

    fn take_fault(&mut self) -> Option<UnpackError> {
        self.fault.take()
    }
}

/// Between two entries tar reads headers and extension records (PAX, GNU long names)
/// into memory; this caps those reads (Go caps them at 1 MiB too), so a hostile
/// multi-GiB PAX record cannot exhaust memory.
#[derive(Clone, Default)]
pub(crate) struct HeaderBudget(Rc<(Cell<Option<u64>>, Cell<bool>)>);

impl HeaderBudget {
    /// Bytes of headers and extension records accepted before one entry.
    pub(crate) const LIMIT: u64 = (1 << 20) + (64 << 10);

    pub(crate) fn arm(&self) {
        self.0 .0.set(Some(Self::LIMIT));
    }

    pub(crate) fn disarm(&self) {
        self.0 .0.set(None);
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.0 .1.get()
    }
}

/// The reader tar owns: the layer stream, with the header budget applied while armed.
pub(crate) struct Budgeted<S> {
    pub stream: S,
    pub budget: HeaderBudget,
}

impl<S: Read> Read for Budgeted<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.budget.0 .0.get() else {
            return self.stream.read(buf);
        };
        let want = buf.len().min(
            usize::try_from(left)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let n = self.stream.read(&mut buf[..want])?;
        if n as u64 > left {
            self.budget.0 .1.set(true);
            return Err(io::Error::other("tar headers over their size limit"));
        }
        self.budget.0 .0.set(Some(left - n as u64));
        Ok(n)
    }
}
