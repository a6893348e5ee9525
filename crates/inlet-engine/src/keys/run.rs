//! A sorted run of hashes in a temporary file: how [`super::KeyHashes`] keeps a table's key
//! hashes off the heap.
//!
//! The file has no name (it is unlinked as it is made), so it goes away with the process, killed
//! or not. Its pages are the kernel's page cache, which the kernel writes out and drops under
//! pressure, not memory of the process.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Hashes in a block, the unit a lookup reads: 4 KiB.
const BLOCK: usize = 512;
/// Hashes read or written at a time when a run is read or written whole: 64 KiB.
const STRETCH: usize = 16 * BLOCK;

/// Hashes in ascending order without repeats, with the first hash of each block kept in memory
/// (a 512th of the run), so that looking a hash up reads one block.
#[derive(Debug)]
pub(super) struct Run {
    file: File,
    len: usize,
    fences: Vec<u64>,
}

impl Run {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the run holds in memory.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.fences.capacity() * size_of::<u64>()
    }

    /// Every hash of the run, in order.
    #[cfg(test)]
    pub(super) fn hashes(&self) -> Vec<u64> {
        let mut all = Vec::new();
        Source::Run(Reader::new(self))
            .drain(|hashes| {
                all.extend_from_slice(hashes);
                Ok(())
            })
            .expect("readable");
        all
    }

    /// Replaces `into` with `count` hashes from position `start` on, read through `bytes`
    /// (kept from read to read, so that it is not zeroed each time).
    fn read(&self, start: usize, count: usize, bytes: &mut Vec<u8>, into: &mut Vec<u64>) -> io::Result<()> {
        bytes.resize(count * size_of::<u64>(), 0);
        read_exact_at(&self.file, bytes, (start * size_of::<u64>()) as u64)?;
        into.clear();
        into.extend(bytes.chunks_exact(size_of::<u64>()).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))));
        Ok(())
    }
}

/// Writes a run: hashes given in ascending order, without repeats.
pub(super) struct RunWriter {
    file: File,
    /// Hashes not yet written; the file holds a whole number of stretches before them.
    buffer: Vec<u64>,
    /// The buffer's bytes as written, kept from write to write.
    bytes: Vec<u8>,
    len: usize,
    fences: Vec<u64>,
}

impl RunWriter {
    /// A run in a new file in `dir`.
    pub(super) fn new(dir: &Path) -> io::Result<Self> {
        Ok(RunWriter {
            file: tempfile::tempfile_in(dir)?,
            buffer: Vec::with_capacity(STRETCH),
            bytes: Vec::with_capacity(STRETCH * size_of::<u64>()),
            len: 0,
            fences: Vec::new(),
        })
    }

    /// Appends `hashes`, ascending, each above every hash written before.
    pub(super) fn extend(&mut self, mut hashes: &[u64]) -> io::Result<()> {
        while !hashes.is_empty() {
            let (now, rest) = hashes.split_at(hashes.len().min(self.room()?));
            self.buffer.extend_from_slice(now);
            hashes = rest;
        }
        Ok(())
    }

    /// How many hashes the buffer takes before it is written: at least one.
    fn room(&mut self) -> io::Result<usize> {
        if self.buffer.len() == STRETCH {
            self.write_buffer()?;
        }
        Ok(STRETCH - self.buffer.len())
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        self.fences.extend(self.buffer.iter().step_by(BLOCK));
        self.bytes.clear();
        self.bytes.extend(self.buffer.iter().flat_map(|hash| hash.to_le_bytes()));
        self.file.write_all(&self.bytes)?;
        self.len += self.buffer.len();
        self.buffer.clear();
        Ok(())
    }

    pub(super) fn finish(mut self) -> io::Result<Run> {
        self.write_buffer()?;
        self.fences.shrink_to_fit();
        Ok(Run { file: self.file, len: self.len, fences: self.fences })
    }
}

/// Hashes in ascending order, held in memory or read from a run.
pub(super) enum Source<'a> {
    Memory(&'a [u64]),
    Run(Reader<'a>),
}

impl Source<'_> {
    /// The hashes not yet taken, or the next of them: empty once all are taken.
    fn pending(&mut self) -> io::Result<&[u64]> {
        match self {
            Source::Memory(hashes) => Ok(hashes),
            Source::Run(reader) => reader.pending(),
        }
    }

    fn take(&mut self, count: usize) {
        match self {
            Source::Memory(hashes) => *hashes = &hashes[count..],
            Source::Run(reader) => reader.take(count),
        }
    }

    /// Hands `each` every hash not yet taken, in order, a stretch at a time.
    pub(super) fn drain(mut self, mut each: impl FnMut(&[u64]) -> io::Result<()>) -> io::Result<()> {
        loop {
            let pending = self.pending()?;
            if pending.is_empty() {
                return Ok(());
            }
            each(pending)?;
            let taken = pending.len();
            self.take(taken);
        }
    }
}

/// A new run in `dir` of the hashes of `a` and `b`, each once. Random hashes alternate between
/// the two unpredictably, so the loop picks the lower without a branch.
pub(super) fn merge(dir: &Path, mut a: Source, mut b: Source) -> io::Result<Run> {
    let mut out = RunWriter::new(dir)?;
    loop {
        let room = out.room()?;
        let (x, y) = (a.pending()?, b.pending()?);
        if x.is_empty() || y.is_empty() {
            break;
        }
        let (mut i, mut j) = (0, 0);
        for _ in 0..room {
            let (Some(&p), Some(&q)) = (x.get(i), y.get(j)) else { break };
            out.buffer.push(p.min(q));
            i += usize::from(p <= q);
            j += usize::from(q <= p);
        }
        a.take(i);
        b.take(j);
    }
    a.drain(|rest| out.extend(rest))?;
    b.drain(|rest| out.extend(rest))?;
    out.finish()
}

/// Reads a run from its start, a stretch at a time.
pub(super) struct Reader<'a> {
    run: &'a Run,
    bytes: Vec<u8>,
    stretch: Vec<u64>,
    /// The position in `stretch` of the next hash.
    at: usize,
    /// The position in the run of `stretch`'s end.
    read: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(run: &'a Run) -> Self {
        Reader { run, bytes: Vec::new(), stretch: Vec::new(), at: 0, read: 0 }
    }

    /// The hashes read and not yet taken: empty at the run's end only.
    fn pending(&mut self) -> io::Result<&[u64]> {
        if self.at == self.stretch.len() && self.read < self.run.len {
            let count = STRETCH.min(self.run.len - self.read);
            self.run.read(self.read, count, &mut self.bytes, &mut self.stretch)?;
            self.read += count;
            self.at = 0;
        }
        Ok(&self.stretch[self.at..])
    }

    /// Takes the first `count` of [`Self::pending`].
    fn take(&mut self, count: usize) {
        self.at += count;
    }
}

/// Looks hashes up in a run, each block read once while the hashes asked for stay in it.
pub(super) struct Lookup<'a> {
    run: &'a Run,
    /// The block in `hashes`, if one was read.
    block: Option<usize>,
    bytes: Vec<u8>,
    hashes: Vec<u64>,
}

impl<'a> Lookup<'a> {
    pub(super) fn new(run: &'a Run) -> Self {
        Lookup { run, block: None, bytes: Vec::new(), hashes: Vec::new() }
    }

    /// Whether the run holds `hash`.
    pub(super) fn holds(&mut self, hash: u64) -> io::Result<bool> {
        let Some(block) = self.run.fences.partition_point(|&first| first <= hash).checked_sub(1) else {
            return Ok(false);
        };
        if self.block != Some(block) {
            self.block = None;
            let start = block * BLOCK;
            self.run.read(start, BLOCK.min(self.run.len - start), &mut self.bytes, &mut self.hashes)?;
            self.block = Some(block);
        }
        Ok(self.hashes.binary_search(&hash).is_ok())
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, into: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, into, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, into: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `hashes`, given in slices of every length from 1 up.
    fn write(dir: &Path, mut hashes: &[u64]) -> Run {
        let mut out = RunWriter::new(dir).unwrap();
        for length in 1.. {
            let (now, rest) = hashes.split_at(length.min(hashes.len()));
            out.extend(now).unwrap();
            hashes = rest;
            if hashes.is_empty() {
                break;
            }
        }
        out.finish().unwrap()
    }

    #[test]
    fn reads_back_what_it_wrote_in_order_and_finds_each_hash() {
        let dir = tempfile::tempdir().unwrap();
        let hashes: Vec<u64> = (0..20_000u64).map(|i| i * 3 + 1).collect();
        let run = write(dir.path(), &hashes);
        assert_eq!(run.len(), 20_000);
        assert_eq!(run.hashes(), hashes, "across stretches and a short last one");
        assert_eq!(run.heap_bytes(), 20_000usize.div_ceil(BLOCK) * 8, "a hash in memory for every block");
        let mut lookup = Lookup::new(&run);
        for probe in 0..60_010u64 {
            assert_eq!(lookup.holds(probe).unwrap(), probe % 3 == 1 && probe < 60_000, "{probe}");
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the file has no name");
    }

    #[test]
    fn merging_keeps_each_hash_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let odd: Vec<u64> = (0..30_000u64).map(|i| 2 * i + 1).collect();
        let threes: Vec<u64> = (0..20_000u64).map(|i| 3 * i).collect();
        let stored = write(dir.path(), &threes);
        let merged = merge(dir.path(), Source::Memory(&odd), Source::Run(Reader::new(&stored))).unwrap();
        let mut expected: Vec<u64> = odd.iter().chain(&threes).copied().collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(merged.hashes(), expected);
        assert_eq!(merged.len(), expected.len());
        let mut lookup = Lookup::new(&merged);
        assert!(expected.iter().all(|h| lookup.holds(*h).unwrap()));
        let alone = merge(dir.path(), Source::Run(Reader::new(&merged)), Source::Memory(&[])).unwrap();
        assert_eq!(alone.hashes(), expected);
    }

    #[test]
    fn an_empty_run_holds_nothing_and_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), &[]);
        assert!(empty.hashes().is_empty());
        assert!(!Lookup::new(&empty).holds(0).unwrap());
        let missing = RunWriter::new(&dir.path().join("gone")).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
