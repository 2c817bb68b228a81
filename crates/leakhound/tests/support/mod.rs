//! Helpers several test files share (`hunt.rs`, `shapes.rs`, `conns.rs`, `settle.rs`):
//! at most two node apps at once on a 2-core machine, and a child's output read whole
//! on a thread of its own.

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

/// A counting semaphore: at most two apps at once in one test binary.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

static SLOTS: Slots = Slots {
    free: Mutex::new(2),
    cv: Condvar::new(),
};

/// One of the two slots, released on drop.
pub struct Slot;

impl Slot {
    /// Waits for a free slot.
    pub fn take() -> Slot {
        let mut free = SLOTS.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = SLOTS.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        SLOTS.cv.notify_one();
    }
}

/// Reads `r` to its end on a thread of its own; the text (lossy UTF-8) arrives on the
/// receiver.
pub fn read_all(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}
