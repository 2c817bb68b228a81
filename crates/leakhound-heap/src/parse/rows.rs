//! The `nodes`, `edges` and `locations` arrays, row by row: each row's checks (with the byte offset
//! of the offending value), the snapshot's columns filled by the exact one-value path or
//! by the reader's row path ([`RowSink`]: a round's first half converted straight into
//! the lent columns, its second into a part merged after it), and the counts checked
//! against the header.

use std::io::Read;

use super::layout::{Divider, Layout, MaxName, reserved};
use crate::error::{Section, SnapshotError};
use crate::reader::{Reader, RowSink};
use crate::snapshot::{EDGE_SPILLED, EdgeType, HeapSnapshot, NodeType, pack_edge};

/// What a node row converts with: field positions and the type count.
#[derive(Clone, Copy)]
struct NodeCtx {
    n_type: usize,
    n_name: usize,
    n_id: usize,
    n_self: usize,
    n_edges: usize,
    n_detach: Option<usize>,
    /// The `trace_node_id` field, when it is kept (allocation stacks recorded).
    n_trace: Option<usize>,
    type_count: u64,
}

/// One checked node row.
struct NodeRow {
    node_type: u8,
    name: u32,
    name_at: u64,
    id: u32,
    self_size: u32,
    self_size_overflows: bool,
    edge_count: u64,
    detachedness: Option<u8>,
    trace_node: Option<u32>,
}

impl NodeCtx {
    /// Checks a row (`row[i]` the i-th field, `row_at[i]` its offset; fields past 16 read
    /// as 0) and extracts what the snapshot stores.
    #[inline(always)]
    fn row(&self, row: &[u64], row_at: &[u64]) -> Result<NodeRow, SnapshotError> {
        let get = |i: usize| row.get(i).copied().unwrap_or(0);
        let row_offset = row_at[0];
        let t = get(self.n_type);
        if t >= self.type_count {
            return Err(SnapshotError::Invalid {
                section: Section::Nodes,
                offset: row_offset,
                message: format!("node type {t} is not one of the {} node_types", self.type_count),
            });
        }
        let check32 = |v: u64, what: &str| -> Result<u32, SnapshotError> {
            u32::try_from(v).map_err(|_| SnapshotError::Invalid {
                section: Section::Nodes,
                offset: row_offset,
                message: format!("node {what} {v} does not fit 32 bits"),
            })
        };
        let name = check32(get(self.n_name), "name")?;
        let id = check32(get(self.n_id), "id")?;
        let size = get(self.n_self);
        let trace_node = match self.n_trace {
            Some(t) => Some(check32(get(t), "trace_node_id")?),
            None => None,
        };
        Ok(NodeRow {
            node_type: t as u8,
            name,
            name_at: row_at.get(self.n_name).copied().unwrap_or(row_offset),
            id,
            self_size: size as u32,
            self_size_overflows: size > u32::MAX as u64,
            edge_count: get(self.n_edges),
            detachedness: self.n_detach.map(|d| (get(d) & 3) as u8),
            trace_node,
        })
    }
}

/// Node rows converted by one half of a round (see [`RowSink`]).
#[derive(Default)]
struct NodePart {
    node_type: Vec<u8>,
    node_name: Vec<u32>,
    node_id: Vec<u32>,
    self_size: Vec<u32>,
    edge_count: Vec<u32>,
    detachedness: Vec<u8>,
    trace_node: Vec<u32>,
    /// Sum of `edge_count`.
    edges: u64,
    overflows: u64,
    /// Ordinals relative to the part.
    max_name: MaxName,
}

/// Reads the `nodes` array into the snapshot's columns.
struct NodeSink<'a> {
    snap: &'a mut HeapSnapshot,
    ctx: NodeCtx,
    stride: usize,
    /// node_count from the header.
    n: usize,
    overflows: &'a mut u64,
    max_name: &'a mut MaxName,
    field: usize,
    values: u64,
    edge_total: u64,
    row: [u64; 16],
    row_at: [u64; 16],
    /// Rows stored before the columns were lent ([`RowSink::lend`]).
    lent_rows: usize,
}

impl NodeSink<'_> {
    /// Stores a checked row, with the edge-count check that needs the whole array so far.
    #[inline]
    fn push(&mut self, r: NodeRow) -> Result<(), SnapshotError> {
        let snap = &mut *self.snap;
        self.max_name.note(r.name, snap.node_name.len(), r.name_at);
        if r.self_size_overflows {
            *self.overflows += 1;
        }
        self.edge_total += r.edge_count;
        if self.edge_total > u32::MAX as u64 {
            return Err(SnapshotError::Invalid {
                section: Section::Nodes,
                offset: self.row_at[0],
                message: "more than 2^32 edges".into(),
            });
        }
        snap.node_type.push(r.node_type);
        snap.node_name.push(r.name);
        snap.node_id.push(r.id);
        snap.self_size.push(r.self_size);
        snap.first_edge.push(self.edge_total as u32);
        if let Some(d) = r.detachedness {
            snap.detachedness.push(d);
        }
        if let Some(t) = r.trace_node {
            snap.trace_node.push(t);
        }
        Ok(())
    }
}

impl RowSink for NodeSink<'_> {
    type Part = NodePart;
    type Ctx = NodeCtx;

    fn stride(&self) -> usize {
        self.stride
    }

    fn ctx(&self) -> NodeCtx {
        self.ctx
    }

    #[inline(always)]
    fn convert(ctx: &NodeCtx, part: &mut NodePart, row: &[u64], at: &[u64]) -> bool {
        let Ok(r) = ctx.row(row, at) else {
            return false;
        };
        if r.edge_count > u32::MAX as u64 {
            return false;
        }
        part.max_name.note(r.name, part.node_name.len(), r.name_at);
        part.overflows += r.self_size_overflows as u64;
        part.edges += r.edge_count;
        part.node_type.push(r.node_type);
        part.node_name.push(r.name);
        part.node_id.push(r.id);
        part.self_size.push(r.self_size);
        part.edge_count.push(r.edge_count as u32);
        if let Some(d) = r.detachedness {
            part.detachedness.push(d);
        }
        if let Some(t) = r.trace_node {
            part.trace_node.push(t);
        }
        true
    }

    #[inline]
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
        self.values += 1;
        if self.field < self.row.len() {
            self.row[self.field] = v;
            self.row_at[self.field] = at;
        }
        self.field += 1;
        if self.field < self.stride {
            return Ok(());
        }
        self.field = 0;
        let width = self.stride.min(16);
        let r = self.ctx.row(&self.row[..width], &self.row_at[..width]);
        // Count overflow is reported before the row's own problems, as it always was.
        if self.snap.node_type.len() == self.n {
            return Err(SnapshotError::Invalid {
                section: Section::Nodes,
                offset: at,
                message: format!("more node values than node_count {} × {} fields", self.n, self.stride),
            });
        }
        self.push(r?)
    }

    fn at_row_start(&self) -> bool {
        self.field == 0
    }

    fn merge(&mut self, part: &mut NodePart) -> bool {
        let rows = part.node_type.len();
        let snap = &mut *self.snap;
        if snap.node_type.len() + rows > self.n || self.edge_total + part.edges > u32::MAX as u64 {
            return false;
        }
        let before = snap.node_type.len();
        snap.node_type.extend_from_slice(&part.node_type);
        snap.node_name.extend_from_slice(&part.node_name);
        snap.node_id.extend_from_slice(&part.node_id);
        snap.self_size.extend_from_slice(&part.self_size);
        snap.detachedness.extend_from_slice(&part.detachedness);
        snap.trace_node.extend_from_slice(&part.trace_node);
        part.truncate_columns(0);
        self.absorb(part, before, rows);
        true
    }

    fn lend(&mut self, part: &mut NodePart) {
        self.lent_rows = self.snap.node_type.len();
        part.swap_columns(self.snap);
    }

    fn settle(&mut self, part: &mut NodePart, ok: bool) -> bool {
        let before = self.lent_rows;
        let rows = part.node_type.len() - before;
        let ok = ok && before + rows <= self.n && self.edge_total + part.edges <= u32::MAX as u64;
        if !ok {
            part.truncate_columns(before);
        }
        part.swap_columns(self.snap);
        if ok {
            // Lent columns held every earlier row: the part's ordinals are global.
            self.absorb(part, 0, rows);
        } else {
            part.reset_counts();
        }
        ok
    }
}

impl NodeSink<'_> {
    /// Takes a part's counts once its `rows` rows are stored (its ordinals start at
    /// `ordinal_base`): string-index maximum, overflows, values, and the first-edge
    /// offsets from its edge counts. Leaves the counts empty.
    fn absorb(&mut self, part: &mut NodePart, ordinal_base: usize, rows: usize) {
        if let Some(name) = part.max_name.index {
            self.max_name
                .note(name, ordinal_base + part.max_name.ordinal, part.max_name.offset);
        }
        *self.overflows += part.overflows;
        self.values += (rows * self.stride) as u64;
        let mut total = self.edge_total;
        self.snap.first_edge.extend(part.edge_count.iter().map(|&c| {
            total += c as u64;
            total as u32
        }));
        self.edge_total = total;
        part.reset_counts();
    }
}

impl NodePart {
    /// Exchanges the row columns with the snapshot's (lending them, or giving them back).
    fn swap_columns(&mut self, snap: &mut HeapSnapshot) {
        std::mem::swap(&mut self.node_type, &mut snap.node_type);
        std::mem::swap(&mut self.node_name, &mut snap.node_name);
        std::mem::swap(&mut self.node_id, &mut snap.node_id);
        std::mem::swap(&mut self.self_size, &mut snap.self_size);
        std::mem::swap(&mut self.detachedness, &mut snap.detachedness);
        std::mem::swap(&mut self.trace_node, &mut snap.trace_node);
    }

    fn truncate_columns(&mut self, rows: usize) {
        self.node_type.truncate(rows);
        self.node_name.truncate(rows);
        self.node_id.truncate(rows);
        self.self_size.truncate(rows);
        self.detachedness.truncate(rows);
        self.trace_node.truncate(rows);
    }

    fn reset_counts(&mut self) {
        self.edge_count.clear();
        self.edges = 0;
        self.overflows = 0;
        self.max_name = MaxName::default();
    }
}

pub(super) fn read_nodes<R: Read>(
    r: &mut Reader<R>,
    l: &Layout,
    snap: &mut HeapSnapshot,
    overflows: &mut u64,
    max_name: &mut MaxName,
    report: &mut impl FnMut(u64),
) -> Result<(), SnapshotError> {
    let stride = l.node_stride;
    if stride == 0 {
        return Err(r.invalid_at(r.offset(), "meta.node_fields is empty"));
    }
    // Node indices are written as 32-bit numbers; past this many nodes they overflow.
    let max_nodes = (u32::MAX as u64) / stride as u64;
    if l.node_count > max_nodes {
        return Err(r.invalid_at(
            r.offset(),
            format!(
                "node_count {} exceeds what 32-bit node indices can address",
                l.node_count
            ),
        ));
    }
    let n = l.node_count as usize;
    let reserve = n;
    snap.node_type_kinds = l.node_types.iter().map(|s| NodeType::from_name(s)).collect();
    snap.edge_type_kinds = l.edge_types.iter().map(|s| EdgeType::from_name(s)).collect();
    snap.node_type = reserved(reserve);
    snap.node_name = reserved(reserve);
    snap.node_id = reserved(reserve);
    snap.self_size = reserved(reserve);
    snap.first_edge = reserved(reserve + 1);
    snap.first_edge.push(0);
    snap.has_detachedness = l.n_detach.is_some();
    snap.has_trace_node_id = l.n_trace.is_some();
    if snap.has_detachedness {
        snap.detachedness = reserved(reserve);
    }
    // The column is kept only when allocation tracking recorded functions (older V8
    // writes `trace_node_id` as 0 in every snapshot; the newest only with tracking).
    let n_trace = l.n_trace.filter(|_| l.trace_function_count > 0);
    if n_trace.is_some() {
        snap.trace_node = reserved(reserve);
    }
    let mut sink = NodeSink {
        snap,
        ctx: NodeCtx {
            n_type: l.n_type,
            n_name: l.n_name,
            n_id: l.n_id,
            n_self: l.n_self,
            n_edges: l.n_edges,
            n_detach: l.n_detach,
            n_trace,
            type_count: l.node_types.len() as u64,
        },
        stride,
        n,
        overflows,
        max_name,
        field: 0,
        values: 0,
        edge_total: 0,
        row: [0; 16],
        row_at: [0; 16],
        lent_rows: 0,
    };
    r.read_rows(&mut sink, report)?;
    let (values, edge_total) = (sink.values, sink.edge_total);
    let expected = l.node_count * stride as u64;
    if values != expected {
        return Err(r.invalid_at(
            r.offset(),
            format!(
                "the nodes array has {values} values but node_count {} × {stride} fields = {expected}",
                l.node_count
            ),
        ));
    }
    if edge_total != l.edge_count {
        return Err(r.invalid_at(
            r.offset(),
            format!(
                "the nodes' edge counts add up to {edge_total} but the header says edge_count {}",
                l.edge_count
            ),
        ));
    }
    Ok(())
}

/// What an edge row converts with.
#[derive(Clone, Copy)]
struct EdgeCtx {
    e_type: usize,
    e_name: usize,
    e_to: usize,
    type_count: u64,
    node_stride: u32,
    divider: Divider,
    node_count: u32,
    /// Per edge type: true when the name is a string index (not an element index).
    string_named: [bool; 16],
}

/// One checked edge row.
struct EdgeRow {
    edge_type: u32,
    name: u32,
    name_at: u64,
    string_named: bool,
    to: u32,
}

impl EdgeCtx {
    /// Checks a row and extracts what the snapshot stores. Inlined into the row
    /// path, where only the outcome is used: the errors are built on cold branches.
    #[inline(always)]
    fn row(&self, row: &[u64], row_at: &[u64]) -> Result<EdgeRow, SnapshotError> {
        let t = row[self.e_type];
        if t >= self.type_count {
            return Err(SnapshotError::Invalid {
                section: Section::Edges,
                offset: row_at[self.e_type],
                message: format!("edge type {t} is not one of the {} edge_types", self.type_count),
            });
        }
        let to = row[self.e_to];
        if to > u32::MAX as u64 {
            return Err(SnapshotError::Invalid {
                section: Section::Edges,
                offset: row_at[self.e_to],
                message: format!("edge target {to} does not fit 32 bits"),
            });
        }
        let to = to as u32;
        let ordinal = self.divider.div(to);
        if ordinal * self.node_stride != to || ordinal >= self.node_count {
            return Err(SnapshotError::Invalid {
                section: Section::Edges,
                offset: row_at[self.e_to],
                message: if ordinal >= self.node_count {
                    format!(
                        "edge points past the node array (to_node {to}, {} nodes)",
                        self.node_count
                    )
                } else {
                    format!(
                        "edge to_node {to} is not a multiple of the node field count {}",
                        self.node_stride
                    )
                },
            });
        }
        let name = row[self.e_name];
        if name > u32::MAX as u64 {
            return Err(SnapshotError::Invalid {
                section: Section::Edges,
                offset: row_at[self.e_name],
                message: format!("edge name_or_index {name} does not fit 32 bits"),
            });
        }
        Ok(EdgeRow {
            edge_type: t as u32,
            name: name as u32,
            name_at: row_at[self.e_name],
            string_named: self.string_named.get(t as usize).copied().unwrap_or(true),
            to: ordinal,
        })
    }
}

/// Edge rows converted by one half of a round (see [`RowSink`]).
#[derive(Default)]
struct EdgePart {
    edge_kind: Vec<u32>,
    edge_to: Vec<u32>,
    /// Rows whose type and name do not fit one word: (ordinal, type index, name).
    spilled: Vec<(u32, u32, u32)>,
    /// Ordinals relative to the part.
    max_name: MaxName,
}

/// Reads the `edges` array into the snapshot's columns.
struct EdgeSink<'a> {
    snap: &'a mut HeapSnapshot,
    ctx: EdgeCtx,
    stride: usize,
    /// edge_count from the header.
    m: usize,
    max_name: &'a mut MaxName,
    field: usize,
    values: u64,
    row: [u64; 16],
    row_at: [u64; 16],
    /// Rows stored before the columns were lent ([`RowSink::lend`]).
    lent_rows: usize,
    /// Spilled rows ([`pack_edge`]): (edge ordinal, type index, name).
    spilled: Vec<(u32, u32, u32)>,
}

impl RowSink for EdgeSink<'_> {
    type Part = EdgePart;
    type Ctx = EdgeCtx;

    fn stride(&self) -> usize {
        self.stride
    }

    fn ctx(&self) -> EdgeCtx {
        self.ctx
    }

    #[inline(always)]
    fn convert(ctx: &EdgeCtx, part: &mut EdgePart, row: &[u64], at: &[u64]) -> bool {
        let Ok(r) = ctx.row(row, at) else {
            return false;
        };
        part.store(r);
        true
    }

    #[inline]
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
        self.row[self.field] = v;
        self.row_at[self.field] = at;
        self.field += 1;
        self.values += 1;
        if self.field < self.stride {
            return Ok(());
        }
        self.field = 0;
        let snap = &mut *self.snap;
        if snap.edge_to.len() == self.m {
            return Err(SnapshotError::Invalid {
                section: Section::Edges,
                offset: at,
                message: format!("more edge values than edge_count {} × {} fields", self.m, self.stride),
            });
        }
        let r = self.ctx.row(&self.row[..self.stride], &self.row_at[..self.stride])?;
        store_edge(
            &mut snap.edge_kind,
            &mut snap.edge_to,
            &mut self.spilled,
            self.max_name,
            r,
        );
        Ok(())
    }

    fn at_row_start(&self) -> bool {
        self.field == 0
    }

    fn merge(&mut self, part: &mut EdgePart) -> bool {
        let snap = &mut *self.snap;
        let rows = part.edge_to.len();
        if snap.edge_to.len() + rows > self.m {
            return false;
        }
        let before = snap.edge_to.len();
        snap.edge_kind.extend_from_slice(&part.edge_kind);
        snap.edge_to.extend_from_slice(&part.edge_to);
        part.truncate_columns(0);
        self.absorb(part, before, rows);
        true
    }

    fn lend(&mut self, part: &mut EdgePart) {
        self.lent_rows = self.snap.edge_to.len();
        part.swap_columns(self.snap);
    }

    fn settle(&mut self, part: &mut EdgePart, ok: bool) -> bool {
        let before = self.lent_rows;
        let rows = part.edge_to.len() - before;
        let ok = ok && before + rows <= self.m;
        if !ok {
            part.truncate_columns(before);
        }
        part.swap_columns(self.snap);
        if ok {
            // Lent columns held every earlier row: the part's ordinals are global.
            self.absorb(part, 0, rows);
        } else {
            part.max_name = MaxName::default();
            part.spilled.clear();
        }
        ok
    }
}

impl EdgeSink<'_> {
    /// Takes a part's string-index maximum and value count once its `rows` rows are
    /// stored (its ordinals start at `ordinal_base`).
    fn absorb(&mut self, part: &mut EdgePart, ordinal_base: usize, rows: usize) {
        if let Some(name) = part.max_name.index {
            self.max_name
                .note(name, ordinal_base + part.max_name.ordinal, part.max_name.offset);
        }
        self.spilled.extend(
            part.spilled
                .drain(..)
                .map(|(o, t, name)| (ordinal_base as u32 + o, t, name)),
        );
        self.values += (rows * self.stride) as u64;
        part.max_name = MaxName::default();
    }
}

impl EdgePart {
    /// Appends a checked row.
    #[inline(always)]
    fn store(&mut self, r: EdgeRow) {
        store_edge(
            &mut self.edge_kind,
            &mut self.edge_to,
            &mut self.spilled,
            &mut self.max_name,
            r,
        );
    }

    /// Exchanges the row columns with the snapshot's (lending them, or giving them back).
    fn swap_columns(&mut self, snap: &mut HeapSnapshot) {
        std::mem::swap(&mut self.edge_kind, &mut snap.edge_kind);
        std::mem::swap(&mut self.edge_to, &mut snap.edge_to);
    }

    fn truncate_columns(&mut self, rows: usize) {
        self.edge_kind.truncate(rows);
        self.edge_to.truncate(rows);
    }
}

/// Appends a checked edge row to edge columns, noting its name if it is a string index
/// (ordinal: the row's place in these columns), and its type and name in `spilled` if
/// they do not fit one word.
#[inline(always)]
fn store_edge(
    kinds: &mut Vec<u32>,
    to: &mut Vec<u32>,
    spilled: &mut Vec<(u32, u32, u32)>,
    max_name: &mut MaxName,
    r: EdgeRow,
) {
    if r.string_named {
        max_name.note(r.name, to.len(), r.name_at);
    }
    kinds.push(match pack_edge(r.edge_type, r.name) {
        Some(k) => k,
        None => {
            spilled.push((to.len() as u32, r.edge_type, r.name));
            EDGE_SPILLED
        }
    });
    to.push(r.to);
}

pub(super) fn read_edges<R: Read>(
    r: &mut Reader<R>,
    l: &Layout,
    snap: &mut HeapSnapshot,
    max_name: &mut MaxName,
    report: &mut impl FnMut(u64),
) -> Result<(), SnapshotError> {
    let stride = l.edge_stride;
    if stride == 0 || stride > 16 {
        return Err(r.invalid_at(r.offset(), format!("unsupported edge layout of {stride} fields")));
    }
    let m = l.edge_count as usize;
    let reserve = m;
    snap.edge_kind = reserved(reserve);
    snap.edge_to = reserved(reserve);
    let node_stride = l.node_stride as u32;
    let mut string_named = [true; 16];
    for (slot, kind) in string_named.iter_mut().zip(&snap.edge_type_kinds) {
        *slot = !kind.has_index_name();
    }
    let ctx = EdgeCtx {
        e_type: l.e_type,
        e_name: l.e_name,
        e_to: l.e_to,
        type_count: l.edge_types.len() as u64,
        node_stride,
        divider: Divider::new(node_stride),
        node_count: snap.node_type.len() as u32,
        string_named,
    };
    let mut sink = EdgeSink {
        snap,
        ctx,
        stride,
        m,
        max_name,
        field: 0,
        values: 0,
        row: [0; 16],
        row_at: [0; 16],
        lent_rows: 0,
        spilled: Vec::new(),
    };
    r.read_rows(&mut sink, report)?;
    let values = sink.values;
    let spilled = std::mem::take(&mut sink.spilled);
    snap.edge_spilled = spilled.into_iter().map(|(o, t, name)| (o, (t, name))).collect();
    let expected = l.edge_count * stride as u64;
    if values != expected {
        return Err(r.invalid_at(
            r.offset(),
            format!(
                "the edges array has {values} values but edge_count {} × {stride} fields = {expected}",
                l.edge_count
            ),
        ));
    }
    Ok(())
}

/// The `locations` array's values, row by row (what `parse` turns into
/// [`crate::snapshot::Location`]s once the node count is known to check them against):
/// each value must fit 32 bits, and there are at most `max` (V8 writes at most one
/// location per node).
struct LocationSink<'a> {
    values: &'a mut Vec<u32>,
    stride: usize,
    /// node_count × location_fields from the header.
    max: usize,
    node_count: u64,
    /// `values.len()` when the vector was lent ([`RowSink::lend`]).
    lent: usize,
}

impl RowSink for LocationSink<'_> {
    type Part = Vec<u32>;
    type Ctx = ();

    fn stride(&self) -> usize {
        self.stride
    }

    fn ctx(&self) {}

    #[inline(always)]
    fn convert(_: &(), part: &mut Vec<u32>, row: &[u64], _: &[u64]) -> bool {
        if row.iter().any(|&v| v > u32::MAX as u64) {
            return false;
        }
        part.extend(row.iter().map(|&v| v as u32));
        true
    }

    #[inline]
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
        if self.values.len() == self.max {
            return Err(SnapshotError::Invalid {
                section: Section::Locations,
                offset: at,
                message: format!(
                    "more location values than node_count {} × {} location_fields",
                    self.node_count, self.stride
                ),
            });
        }
        if v > u32::MAX as u64 {
            return Err(SnapshotError::Invalid {
                section: Section::Locations,
                offset: at,
                message: format!("location value {v} does not fit 32 bits"),
            });
        }
        self.values.push(v as u32);
        Ok(())
    }

    fn at_row_start(&self) -> bool {
        self.values.len().is_multiple_of(self.stride)
    }

    fn merge(&mut self, part: &mut Vec<u32>) -> bool {
        if self.values.len() + part.len() > self.max {
            return false;
        }
        self.values.extend_from_slice(part);
        part.clear();
        true
    }

    fn lend(&mut self, part: &mut Vec<u32>) {
        self.lent = self.values.len();
        std::mem::swap(self.values, part);
    }

    fn settle(&mut self, part: &mut Vec<u32>, ok: bool) -> bool {
        let ok = ok && part.len() <= self.max;
        if !ok {
            part.truncate(self.lent);
        }
        std::mem::swap(self.values, part);
        ok
    }
}

/// Reads the `locations` array into `values` (`stride` values a row, checked to fit
/// 32 bits, at most a row per node of the header's `node_count`), on the reader's row
/// path. The bound is checked per value on the exact path and per half-buffer on the
/// row path, not per value there.
pub(super) fn read_locations<R: Read>(
    r: &mut Reader<R>,
    stride: usize,
    node_count: u64,
    values: &mut Vec<u32>,
    report: &mut impl FnMut(u64),
) -> Result<(), SnapshotError> {
    let stride = stride.max(1);
    let max = usize::try_from(node_count.saturating_mul(stride as u64)).unwrap_or(usize::MAX);
    let mut sink = LocationSink {
        values,
        stride,
        max,
        node_count,
        lent: 0,
    };
    r.read_rows(&mut sink, report)
}
