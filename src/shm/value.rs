//! `multiprocessing.Value` and `Array`: typed data in shared memory, with an
//! optional lock.
//!
//! The steps (what `Value('d', 0.0)` does under the hood):
//! 1. map shared memory big enough for a small header, a lock and the data:
//!    anonymous (inherited by children forked afterwards) or, with
//!    [`ValueOptions::name`], a named object other processes can open;
//! 2. record the typecode and the length in the header, so that
//!    [`Value::open`] / [`Array::open`] can refuse the wrong type;
//! 3. initialise the lock unless `lock: false`: as in Python, a recursive
//!    lock (here a robust, recursive [`RobustMutex`]);
//! 4. write the initial data, then publish the header's magic number.
//!
//! As in Python, `get` and `set` are each one memory access, but
//! `v.set(v.get() + 1)` is two: between them another process can write, and
//! one of the updates is lost. Hold [`Value::get_lock`] around such updates.

use super::typecode::{Typecode, expect_typecode};
use super::{AnonMapping, PosixName, SharedMemory, SharedRegion, ShmOwner};
use crate::error::{Error, Result};
use crate::sync::{MutexKind, RobustMutex};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

/// How to make a [`Value`] or an [`Array`] (Python's `lock=` argument, plus a
/// name for sharing with unrelated processes).
#[derive(Debug, Clone)]
pub struct ValueOptions {
    /// Make a lock for [`Value::get_lock`] (Python's default, `lock=True`).
    /// `false` gives the lock-free `RawValue` / `RawArray`.
    pub lock: bool,
    /// The typecode to record; `None` means the type's own. Must name the
    /// same C type (`Some('l')` for an `i64`).
    pub typecode: Option<char>,
    /// Put the data in a named POSIX shared memory object, created
    /// exclusively and unlinked when the creator drops it; `None` means an
    /// anonymous mapping shared with children forked afterwards.
    pub name: Option<PosixName>,
}

impl Default for ValueOptions {
    fn default() -> Self {
        ValueOptions {
            lock: true,
            typecode: None,
            name: None,
        }
    }
}

/// One value of type `T` in shared memory (`multiprocessing.Value`).
pub struct Value<T: Typecode>(Block<T>);

/// A fixed-length array of `T` in shared memory (`multiprocessing.Array`).
pub struct Array<T: Typecode>(Block<T>);

impl<T: Typecode> Value<T> {
    /// `Value(typecode, value)`: anonymous memory, with a lock.
    pub fn new(value: T) -> Result<Value<T>> {
        Value::with_options(value, &ValueOptions::default())
    }

    /// `Value(typecode, value, lock=...)`, optionally named.
    pub fn with_options(value: T, options: &ValueOptions) -> Result<Value<T>> {
        Block::create(1, &[value], options).map(Value)
    }

    /// Opens a named Value made by another process; fails if the object does
    /// not exist, is not a Value, or holds another type.
    pub fn open(name: &PosixName) -> Result<Value<T>> {
        let block = Block::open(name)?;
        if block.len != 1 {
            return Err(Error::invalid(
                "shared value",
                format!(
                    "{name} is an Array of {} items; open it as an Array",
                    block.len
                ),
            ));
        }
        Ok(Value(block))
    }

    /// `value.value` (read).
    pub fn get(&self) -> T {
        self.0.get(0)
    }

    /// `value.value = x` (write).
    pub fn set(&self, value: T) {
        self.0.set(0, value)
    }

    /// `value.get_lock()`: the recursive lock made with the value. An error
    /// for a lock-free value (`lock: false`).
    pub fn get_lock(&self) -> Result<&RobustMutex> {
        self.0.lock()
    }

    /// The typecode recorded for the value (`'d'`).
    pub fn typecode(&self) -> char {
        self.0.typecode
    }
}

impl<T: Typecode> Array<T> {
    /// `Array(typecode, [..])`: a copy of `items`, with a lock.
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        Array::from_slice_with(items, &ValueOptions::default())
    }

    /// `Array(typecode, n)`: `len` zeros, with a lock.
    pub fn zeroed(len: usize) -> Result<Array<T>> {
        Array::zeroed_with(len, &ValueOptions::default())
    }

    /// `Array(typecode, [..], lock=...)`, optionally named.
    pub fn from_slice_with(items: &[T], options: &ValueOptions) -> Result<Array<T>> {
        Block::create(items.len(), items, options).map(Array)
    }

    /// `Array(typecode, n, lock=...)`, optionally named: `len` zeros (new
    /// shared memory is zero-filled by the kernel, and all-zero bytes are 0 for
    /// every typecode, so nothing is written).
    pub fn zeroed_with(len: usize, options: &ValueOptions) -> Result<Array<T>> {
        Block::create(len, &[], options).map(Array)
    }

    /// Opens a named Array made by another process.
    pub fn open(name: &PosixName) -> Result<Array<T>> {
        Block::open(name).map(Array)
    }

    /// `len(arr)`.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// True for an array of length 0.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// `arr[i]`; an index out of range is [`Error::Invalid`] (Python's IndexError).
    pub fn get(&self, i: usize) -> Result<T> {
        self.0.check_index(i)?;
        Ok(self.0.get(i))
    }

    /// `arr[i] = x`.
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        self.0.check_index(i)?;
        self.0.set(i, value);
        Ok(())
    }

    /// `for x in arr`: each item, read when the iterator reaches it.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.0.len).map(|i| self.0.get(i))
    }

    /// `arr[:]`: a copy of every item.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }

    /// `arr.get_lock()`; an error for a lock-free array.
    pub fn get_lock(&self) -> Result<&RobustMutex> {
        self.0.lock()
    }

    /// The typecode recorded for the array.
    pub fn typecode(&self) -> char {
        self.0.typecode
    }
}

impl Array<super::Char> {
    /// `arr.value` of a `'c'` array: the bytes up to the first NUL.
    pub fn value(&self) -> Vec<u8> {
        self.iter().map(|c| c.0).take_while(|&b| b != 0).collect()
    }
}

impl<T: Typecode> fmt::Display for Value<T> {
    /// Prints `value.value` as Python does (`3.1415927`, `b'H'`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt_python(f)
    }
}

impl<T: Typecode> fmt::Display for Array<T> {
    /// Prints `arr[:]` as Python does: `[0, -1, -2]`, or `b'Hello'` for `'c'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        T::fmt_python_slice(&self.to_vec(), f)
    }
}

impl<T: Typecode> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?}, {})", self.typecode(), self)
    }
}

impl<T: Typecode> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array({:?}, {})", self.typecode(), self)
    }
}

/// "ikVA": written last, so an opener never sees a half-made header.
const MAGIC: u32 = u32::from_le_bytes(*b"ikVA");
/// Where the lock sits (after the header) and how much room it gets.
const LOCK_AT: usize = 64;
const LOCK_ROOM: usize = std::mem::size_of::<RobustMutex>().next_multiple_of(64);
/// Where the items start: 64-byte aligned, enough for every typecode.
const DATA_AT: usize = LOCK_AT + LOCK_ROOM;

/// The header at the start of the memory.
#[repr(C)]
struct Header {
    magic: AtomicU32,
    typecode: u32,
    locked: u32,
    _pad: u32,
    len: u64,
}

/// The memory behind a Value or an Array.
#[derive(Debug)]
enum Backing {
    Anon(AnonMapping),
    Created(ShmOwner),
    Opened(SharedMemory),
}

impl SharedRegion for Backing {
    fn as_ptr(&self) -> *mut u8 {
        match self {
            Backing::Anon(m) => m.as_ptr(),
            Backing::Created(m) => m.as_ptr(),
            Backing::Opened(m) => m.as_ptr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Backing::Anon(m) => m.len(),
            Backing::Created(m) => m.len(),
            Backing::Opened(m) => m.len(),
        }
    }
}

/// What Value and Array share: the memory, its length in items, its typecode.
struct Block<T> {
    memory: Backing,
    len: usize,
    locked: bool,
    typecode: char,
    _items: PhantomData<T>,
}

impl<T: Typecode> Block<T> {
    /// A new block of `len` items: a copy of `items`, or zeros if `items` is empty.
    fn create(len: usize, items: &[T], options: &ValueOptions) -> Result<Block<T>> {
        let typecode = options.typecode.unwrap_or(T::TYPECODE);
        expect_typecode::<T>(typecode, "the new shared object")?;
        let size = std::mem::size_of::<T>()
            .checked_mul(len)
            .and_then(|bytes| bytes.checked_add(DATA_AT))
            .ok_or_else(|| {
                Error::invalid("array length", format!("{len} items do not fit in memory"))
            })?;
        let memory = match &options.name {
            None => Backing::Anon(AnonMapping::new(size)?),
            Some(name) => Backing::Created(SharedMemory::create(name, size)?),
        };
        let block = Block {
            memory,
            len,
            locked: options.lock,
            typecode,
            _items: PhantomData,
        };
        block.init(items)?;
        Ok(block)
    }

    /// Steps 2 to 4 of the module documentation.
    fn init(&self, items: &[T]) -> Result<()> {
        let header = self.header()?;
        // SAFETY: in bounds and aligned (checked by `place`); the memory is
        // fresh and ours, and nobody else reads it until the magic number is
        // published below, so this reference is unique while it lives.
        let fields = unsafe { &mut *header };
        fields.typecode = u32::from(self.typecode);
        fields.locked = u32::from(self.locked);
        fields.len = self.len as u64;
        if self.locked {
            // SAFETY: in bounds and aligned (checked by `place`), fresh memory
            // that lives as long as the block.
            unsafe { RobustMutex::init_at(self.memory.place(LOCK_AT)?, MutexKind::Recursive)? };
        }
        for (i, &item) in items.iter().enumerate() {
            self.set(i, item);
        }
        // SAFETY: the header is in bounds and aligned (checked by `place`).
        unsafe { (*header).magic.store(MAGIC, Ordering::Release) };
        Ok(())
    }

    fn open(name: &PosixName) -> Result<Block<T>> {
        let memory = SharedMemory::open_at_least(name, DATA_AT)?;
        let header = memory.place::<Header>(0)?;
        // SAFETY: in bounds and aligned; the creator publishes the magic last
        // (Release), so after an Acquire load that sees it the rest is written.
        let (magic, code, locked, len) = unsafe {
            let h = &*header;
            (h.magic.load(Ordering::Acquire), h.typecode, h.locked, h.len)
        };
        if magic != MAGIC {
            return Err(Error::invalid(
                "shared value",
                format!("{name} is not a Value or Array made by ipckit (or is still being made)"),
            ));
        }
        let typecode = char::from_u32(code).unwrap_or('?');
        expect_typecode::<T>(typecode, name.as_str())?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let needed = len
            .saturating_mul(std::mem::size_of::<T>())
            .saturating_add(DATA_AT);
        if memory.len() < needed {
            return Err(Error::invalid(
                "shared value",
                format!(
                    "{name} claims {len} items but holds only {} bytes",
                    memory.len()
                ),
            ));
        }
        Ok(Block {
            memory: Backing::Opened(memory),
            len,
            locked: locked != 0,
            typecode,
            _items: PhantomData,
        })
    }

    fn header(&self) -> Result<*mut Header> {
        self.memory.place::<Header>(0)
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i < self.len {
            Ok(())
        } else {
            Err(Error::invalid(
                "array index",
                format!("{i} is out of range for an array of {} items", self.len),
            ))
        }
    }

    /// Item `i` (in range: checked by the callers).
    fn get(&self, i: usize) -> T {
        self.memory
            .read(DATA_AT + i * std::mem::size_of::<T>())
            .expect("index checked and memory sized for len items")
    }

    fn set(&self, i: usize, value: T) {
        self.memory
            .write(DATA_AT + i * std::mem::size_of::<T>(), value)
            .expect("index checked and memory sized for len items")
    }

    fn lock(&self) -> Result<&RobustMutex> {
        if !self.locked {
            return Err(Error::invalid(
                "get_lock",
                "this object was made with lock: false (a RawValue/RawArray); make it with a lock, or use a separate Lock",
            ));
        }
        let ptr = self.memory.place::<RobustMutex>(LOCK_AT)?;
        // SAFETY: `init` (ours or the creator's) initialised the mutex there,
        // and the memory lives as long as `self`.
        Ok(unsafe { RobustMutex::from_ptr(ptr) })
    }
}
