//! The fixed vocabulary of leak patterns, each with a one-line fix hint.

/// What kind of leak a cluster is (the `pattern` value in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pattern {
    /// An EventEmitter's listener array keeps growing.
    ListenerAccumulation,
    /// A Map, Set, Array or plain object whose size only grows.
    UnboundedCollection,
    /// `Timeout` objects kept by the timer lists (intervals never cleared).
    UnclearedTimer,
    /// A closure or its shared context keeps a large object alive.
    ClosureRetention,
    /// Buffers, ArrayBuffers and typed arrays growing off the JS heap.
    ExternalMemory,
    /// Sockets kept by an http Agent.
    AgentSockets,
    /// Buffered data of streams nobody reads.
    UnconsumedStream,
    /// Growth hanging off the global object.
    GlobalVariable,
    /// None of the above.
    Other,
}

impl Pattern {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::ListenerAccumulation => "listener_accumulation",
            Pattern::UnboundedCollection => "unbounded_collection",
            Pattern::UnclearedTimer => "uncleared_timer",
            Pattern::ClosureRetention => "closure_retention",
            Pattern::ExternalMemory => "external_memory",
            Pattern::AgentSockets => "agent_sockets",
            Pattern::UnconsumedStream => "unconsumed_stream",
            Pattern::GlobalVariable => "global_variable",
            Pattern::Other => "other",
        }
    }

    /// A one-line fix hint.
    pub fn fix_hint(self) -> &'static str {
        match self {
            Pattern::ListenerAccumulation => {
                "remove the listener when its work is done (emitter.off / removeListener, e.g. on 'close'), or register it once"
            }
            Pattern::UnboundedCollection => {
                "bound the collection: evict old entries (an LRU with a max size, or a TTL) or delete each entry when it is no longer needed"
            }
            Pattern::UnclearedTimer => {
                "keep the timer handle and clearInterval/clearTimeout it when its owner is done (or unref() short-lived ones)"
            }
            Pattern::ClosureRetention => {
                "the closure's context keeps a large value alive: set that variable to null after use, or create the closure in a scope that does not hold it"
            }
            Pattern::ExternalMemory => {
                "Buffers/ArrayBuffers stay alive through a JS reference: drop the reference, or copy out only the bytes you need"
            }
            Pattern::AgentSockets => {
                "sockets pile up in an http.Agent: consume or destroy every response, and set maxSockets / maxFreeSockets / timeouts"
            }
            Pattern::UnconsumedStream => {
                "a stream buffers data nobody reads: consume it (pipe, resume, for await) or destroy it"
            }
            Pattern::GlobalVariable => {
                "growth hangs off a global: scope it to a module or request, bound it, or clear it"
            }
            Pattern::Other => {
                "follow the retainer trace to the first object your code owns and release the reference there"
            }
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
