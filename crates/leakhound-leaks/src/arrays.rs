//! Old collections of primitives whose backing store grows at every step: Arrays (their
//! element store), Maps and Sets (their hash table), and other objects used as maps
//! (their element and property stores: `lastSeen[userId] = Date.now()`). Numbers and
//! booleans have no node a leak can be counted by (a number is at most a heap number, never
//! reported), so no new object appears and no cluster finds them.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};
use rayon::prelude::*;

use crate::cluster::{HolderGrowth, holder_growth_cluster};
use crate::consistency::IdIndex;
use crate::holder::{holder_label, is_bounded_pool, is_own_instrumentation};
use crate::model::{Cluster, LeakOptions, PerRequest};
use crate::nodes::{is_internal, is_reportable};
use crate::pattern::Pattern;
use crate::source::ScriptMap;
use crate::trace::Traces;

/// A kind of collection of primitives, as its backing store shows it.
#[derive(Clone, Copy)]
struct Collection {
    /// Its DevTools class (`Array`, `Map`, `Set`); empty for any other object, which is
    /// named by its own class.
    class: &'static str,
    /// The internal edges to its backing stores.
    store_edges: &'static [&'static str],
    /// Bytes the store takes per slot of capacity: 8 for an Array's element; for V8's
    /// ordered hash tables, half a bucket plus the entry (key, value, chain link): 28
    /// for a Map, 20 for a Set (`OrderedHashMap`/`OrderedHashSet`); 8 for another
    /// object's element or property (fast mode; a dictionary takes three slots per entry:
    /// key, value, details, so its count reads up to 3 times high).
    slot_bytes: u64,
    /// What a slot is called in the report.
    unit: &'static str,
}

const ARRAY: Collection = Collection {
    class: "Array",
    store_edges: &["elements"],
    slot_bytes: 8,
    unit: "(element slot)",
};
const MAP: Collection = Collection {
    class: "Map",
    store_edges: &["table"],
    slot_bytes: 28,
    unit: "(entry slot)",
};
const SET: Collection = Collection {
    class: "Set",
    store_edges: &["table"],
    slot_bytes: 20,
    unit: "(entry slot)",
};
const OBJECT: Collection = Collection {
    class: "",
    store_edges: &["elements", "properties"],
    slot_bytes: 8,
    unit: "(property slot)",
};

/// The string indexes of one snapshot's names that [`Collection`]s need.
struct Names {
    /// `Array`, `Map`, `Set` as node names.
    array: Vec<u32>,
    map: Vec<u32>,
    set: Vec<u32>,
    /// `elements`, `properties`, `table` as edge names.
    elements: Vec<u32>,
    properties: Vec<u32>,
    table: Vec<u32>,
}

impl Names {
    fn of(s: &HeapSnapshot) -> Names {
        let find = |t: &str| s.strings().find_all(t);
        Names {
            array: find("Array"),
            map: find("Map"),
            set: find("Set"),
            elements: find("elements"),
            properties: find("properties"),
            table: find("table"),
        }
    }

    /// The collection kind of object `o`.
    fn kind(&self, s: &HeapSnapshot, o: NodeId) -> Collection {
        let name = s.raw_name_index(o);
        if self.array.contains(&name) {
            ARRAY
        } else if self.map.contains(&name) {
            MAP
        } else if self.set.contains(&name) {
            SET
        } else {
            OBJECT
        }
    }

    /// `o`'s self size plus that of the nodes its internal edges named in `kind` lead to:
    /// its backing stores, wherever the analysis counted them (DevTools moves an owned
    /// store's size into its owner).
    fn store_bytes(&self, s: &HeapSnapshot, o: NodeId, kind: Collection) -> u64 {
        let wanted = |name: u32| {
            kind.store_edges.iter().any(|&e| {
                let ids = match e {
                    "elements" => &self.elements,
                    "properties" => &self.properties,
                    _ => &self.table,
                };
                ids.contains(&name)
            })
        };
        s.self_size(o)
            + s.edges(o)
                .filter(|&e| s.edge_type(e) == EdgeType::Internal && wanted(s.edge_name_or_index(e)))
                .map(|e| s.self_size(s.edge_target(e)))
                .sum::<u64>()
    }

    /// How many of `o`'s values are nodes (objects, strings, heap numbers): a Map's or
    /// Set's table entries (keys and values), another object's element and property
    /// edges. Primitives with no node (small integers, booleans) are not counted.
    fn node_values(&self, s: &HeapSnapshot, o: NodeId, kind: Collection) -> u64 {
        if kind.class == MAP.class || kind.class == SET.class {
            let table = s
                .edges(o)
                .find(|&e| s.edge_type(e) == EdgeType::Internal && self.table.contains(&s.edge_name_or_index(e)))
                .map(|e| s.edge_target(e));
            return table.map_or(0, |t| {
                s.edges(t)
                    .filter(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) != "map")
                    .count() as u64
            });
        }
        s.edges(o)
            .filter(|&e| matches!(s.edge_type(e), EdgeType::Element | EdgeType::Property))
            .count() as u64
    }
}

/// Node-valued entries below this many are not a count to judge by: the store's bytes
/// decide alone.
const MIN_NODE_VALUES: u64 = 16;

/// A store must have grown by this much from the target to the last snapshot.
const MIN_GROWTH_BYTES: u64 = 1024;

/// Old collections of primitives whose backing store grows at every step: Arrays (their
/// element store), Maps and Sets (their hash table: a `Map` of counters keyed by a new
/// number per request), other objects used as maps (their element and property
/// stores). Counts are estimated from the stores' bytes, capacity included: a hash table
/// doubles as it fills, so its count moves in steps. Collections that already name a
/// cluster (`known`), hold reportable objects (the object finder's), are node's bounded
/// pools or leakhound's own are left out. The nodes are looked at on every core.
pub(crate) fn growing_primitive_collections(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &Traces,
    is_new: &[bool],
    known: &std::collections::HashSet<String>,
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> Vec<Cluster> {
    let last_i = snaps.len() - 1;
    let s = snaps[last_i];
    let names: Vec<Names> = snaps.iter().map(|snap| Names::of(snap)).collect();
    let found: Vec<(NodeId, Collection, Vec<u64>)> = (0..s.node_count() as NodeId)
        .into_par_iter()
        .filter_map(|o| {
            if is_new[o as usize] || s.node_type(o) != NodeType::Object || is_internal(s, o) || !traces.is_reached(o) {
                return None;
            }
            let kind = names[last_i].kind(s, o);
            if names[last_i].store_bytes(s, o, kind) < MIN_GROWTH_BYTES {
                return None;
            }
            // New objects as values are the object finder's to count: its cluster, or none.
            if s.edges(o).any(|e| {
                let t = s.edge_target(e);
                matches!(s.edge_type(e), EdgeType::Element | EdgeType::Property)
                    && is_new[t as usize]
                    && is_reportable(s, t)
            }) {
                return None;
            }
            let id = s.id(o);
            let sizes: Vec<u64> = snaps
                .iter()
                .zip(ids)
                .zip(&names)
                .map(|((snap, ix), n)| ix.get(id).map(|x| n.store_bytes(snap, x, kind)))
                .collect::<Option<_>>()?;
            let grows = (1..snaps.len()).all(|k| sizes[k] > sizes[k - 1]);
            let growth = sizes[last_i].saturating_sub(sizes[1]);
            if !grows || growth < MIN_GROWTH_BYTES || growth / kind.slot_bytes < opts.min_growth {
                return None;
            }
            // Where the values are nodes, their number is the count, not the store's bytes:
            // a bounded cache whose entries are replaced keeps a flat count while its hash
            // table doubles once more (deleted entries hold their slots until a rehash).
            if names[last_i].node_values(s, o, kind) >= MIN_NODE_VALUES {
                let values: Vec<u64> = snaps
                    .iter()
                    .zip(ids)
                    .zip(&names)
                    .map(|((snap, ix), n)| ix.get(id).map_or(0, |x| n.node_values(snap, x, kind)))
                    .collect();
                if !(1..snaps.len()).all(|k| values[k] > values[k - 1]) {
                    return None;
                }
            }
            Some((o, kind, sizes))
        })
        .collect();
    let mut out = Vec::new();
    for (o, kind, sizes) in found {
        let id = s.id(o);
        let growth = sizes[last_i].saturating_sub(sizes[1]);
        if is_bounded_pool(s, traces, o) {
            continue;
        }
        let label = holder_label(s, traces, o);
        if known.contains(&label) || is_own_instrumentation(s, traces, o) {
            continue;
        }
        let counts: Vec<u64> = sizes.iter().map(|b| b / kind.slot_bytes).collect();
        let per_request = opts.requests_between(1, last_i).map(|req| PerRequest {
            count: growth as f64 / kind.slot_bytes as f64 / req,
            retained_size_bytes: growth as f64 / req,
            objects: Vec::new(),
            string_bytes: None,
        });
        out.push(holder_growth_cluster(
            s,
            traces,
            scripts,
            o,
            HolderGrowth {
                label,
                class: if kind.class.is_empty() {
                    s.class(o).name.clone()
                } else {
                    kind.class.into()
                },
                // Estimated from the store's bytes (capacity included).
                unit: kind.unit,
                pattern: Pattern::UNBOUNDED_COLLECTION,
                count: growth / kind.slot_bytes,
                counts_per_snapshot: counts,
                retained_size_bytes: s.retained_size(o),
                holder_retained_per_snapshot: snaps
                    .iter()
                    .zip(ids)
                    .map(|(snap, ix)| {
                        ix.get(id)
                            .filter(|_| snap.is_fully_analyzed())
                            .map(|x| snap.retained_size(x))
                    })
                    .collect(),
                per_request,
                external_share: 0.0,
            },
        ));
    }
    out
}
