//! A plugin's stdout and stderr, line by line into `tracing` with its name.
//! A shared line budget per call stops a chatty plugin from flooding the log;
//! the tail of stderr is kept so a panic message can be shown with the trap.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines a single call may log (stdout, stderr and the `log` import together).
pub const LINE_BUDGET: u32 = 500;
const MAX_LINE: usize = 8 * 1024;
const TAIL: usize = 2 * 1024;

/// Shared by the call's streams and its `log` import.
#[derive(Clone)]
pub struct LogBudget {
    plugin: Arc<str>,
    remaining: Arc<AtomicU32>,
    stderr_tail: Arc<Mutex<String>>,
}

impl LogBudget {
    pub fn new(plugin: &str) -> Self {
        LogBudget {
            plugin: plugin.into(),
            remaining: Arc::new(AtomicU32::new(LINE_BUDGET)),
            stderr_tail: Arc::default(),
        }
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// True when the line may be logged; warns once when the budget runs out.
    pub fn take(&self) -> bool {
        match self.remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
            Ok(1) => {
                tracing::warn!(plugin = %self.plugin, "log budget of {LINE_BUDGET} lines spent; dropping the rest of this call's output");
                false
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// The last bytes the plugin wrote to stderr (a panic message, usually).
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail.lock().map(|tail| tail.trim().to_owned()).unwrap_or_default()
    }

    pub fn stdout(&self) -> PluginOutput {
        PluginOutput { budget: self.clone(), stream: Stream::Stdout }
    }

    pub fn stderr(&self) -> PluginOutput {
        PluginOutput { budget: self.clone(), stream: Stream::Stderr }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// One of the plugin's output streams.
pub struct PluginOutput {
    budget: LogBudget,
    stream: Stream,
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { budget: self.budget.clone(), stream: self.stream, line: Vec::new() })
    }
}

struct LineWriter {
    budget: LogBudget,
    stream: Stream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if let Stream::Stderr = self.stream
            && let Ok(mut tail) = self.budget.stderr_tail.lock()
        {
            tail.push_str(&text);
            tail.push('\n');
            if tail.len() > TAIL {
                let cut = tail.len() - TAIL;
                let cut = (cut..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(0);
                tail.drain(..cut);
            }
        }
        if self.budget.take() {
            let plugin = self.budget.plugin();
            match self.stream {
                Stream::Stdout => tracing::info!(plugin, stream = "stdout", "{text}"),
                Stream::Stderr => tracing::warn!(plugin, stream = "stderr", "{text}"),
            }
        }
    }
}

impl LineWriter {
    fn push(&mut self, buf: &[u8]) {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else {
                self.line.push(byte);
                if self.line.len() >= MAX_LINE {
                    self.emit();
                }
            }
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
