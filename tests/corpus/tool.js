'use strict';
// tool.js: the JSON side of regen.sh (manifest, oracle jobs, sanity checks of the goldens).
//
//   node tests/corpus/tool.js manifest SNAP_DIR [OLD] > manifest.json (reads SNAP_DIR/*.heapsnapshot;
//                                                    keeps OLD's entries from other producers)
//   node tests/corpus/tool.js producers SNAP_DIR OLD  > manifest.json (OLD with the other producers'
//                                                    entries replaced by SNAP_DIR/<producer>-*.heapsnapshot)
//   node tests/corpus/tool.js tracked SNAP_DIR OLD    > manifest.json (OLD with the *-tracked entries
//                                                    replaced by SNAP_DIR/<producer>-tracked.heapsnapshot)
//   node tests/corpus/tool.js snapshots MANIFEST                      (one snapshot .gz file per line)
//   node tests/corpus/tool.js producer-files MANIFEST                 (files of those entries, one a line)
//   node tests/corpus/tool.js jobs MANIFEST                           (golden<TAB>oracle arg<TAB>…)
//   node tests/corpus/tool.js verify MANIFEST GOLDEN_DIR              (checks the expected facts)
//
// `manifest` decides what the goldens hold: for each entry the exact golden.sh arguments
// (`oracle_args`, with snapshot paths relative to the folder the snapshots are decompressed into),
// including `--retainers-of` ids picked here from the snapshot itself (instances of the classes
// that matter in that file). regen.sh --check re-runs exactly those arguments.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { SCENARIOS, parseSnapshot } = require('./make.js');
const { PRODUCERS } = require('./make-producers.js');

const TOP = 20;

// Reads a snapshot into a small node table: type and name per ordinal, plus id and self size.
function loadNodes(file) {
  const s = parseSnapshot(file);
  const m = s.snapshot.meta, nf = m.node_fields.length;
  const t = m.node_fields.indexOf('type'), n = m.node_fields.indexOf('name');
  const id = m.node_fields.indexOf('id'), sz = m.node_fields.indexOf('self_size');
  const det = m.node_fields.indexOf('detachedness');
  const types = m.node_types[t];
  const nodes = [];
  for (let i = 0; i < s.nodes.length; i += nf) {
    nodes.push({ type: types[s.nodes[i + t]], name: s.strings[s.nodes[i + n]], id: s.nodes[i + id], self: s.nodes[i + sz],
      detached: det >= 0 && s.nodes[i + det] === 2 });
  }
  const layout = { node_fields: m.node_fields, location_fields: m.location_fields, node_types: m.node_types[t] };
  if ('extra_native_bytes' in s.snapshot) layout.extra_native_bytes = s.snapshot.extra_native_bytes;
  return { nodes, nodeCount: s.snapshot.node_count, edgeCount: s.snapshot.edge_count, layout };
}

// first, middle and last of the matches (at most k), in ordinal order
function spread(list, k) {
  if (list.length <= k) return list;
  if (k === 1) return [list[0]];
  const out = [];
  for (let j = 0; j < k; j++) out.push(list[Math.round((j * (list.length - 1)) / (k - 1))]);
  return [...new Set(out)];
}
const objects = (snap, name, k) => spread(snap.nodes.filter((x) => x.type === 'object' && x.name === name), k);
const ofType = (snap, type, name, k) => spread(snap.nodes.filter((x) => x.type === type && x.name === name), k);

// Which nodes get a Retainers list besides the top N (by file name without .heapsnapshot).
const PICKS = {
  idle: (s) => ofType(s, 'object', 'process', 1),
  closures: (s) => [...ofType(s, 'closure', 'holdsBig', 1), ...ofType(s, 'closure', 'inner', 2),
    ...ofType(s, 'closure', 'native_bind', 2), ...objects(s, 'Widget', 1)],
  collections: (s) => [...objects(s, 'Item', 4), ...objects(s, 'SpecialItem', 1)],
  typed: (s) => [...s.nodes.filter((x) => x.name === 'system / JSArrayBufferData' && x.self >= 2 ** 31),
    ...objects(s, 'SharedArrayBuffer', 1), ...objects(s, 'DataView', 1)],
  weakmaps: (s) => [...objects(s, 'WeakValue', 3), ...objects(s, 'WeakKey', 1), ...objects(s, 'Target', 2)],
  internals: (s) => objects(s, 'Record', 3),
  numeric: (s) => [...objects(s, 'Point', 3), ...ofType(s, 'number', 'heap number', 2)],
  unreachable: (s) => objects(s, 'RingNode', 3),
  'pair-a-base': (s) => [...objects(s, 'Leaky', 2), ...objects(s, 'Doomed', 2)],
  'pair-a-current': (s) => objects(s, 'Leaky', 4),
  'pair-b-base': (s) => objects(s, 'RequestRecord', 2),
  'pair-b-current': (s) => objects(s, 'RequestRecord', 4),
  'series-1': (s) => objects(s, 'Session', 2),
  'series-2': (s) => [...objects(s, 'Session', 3), ...objects(s, 'CacheEntry', 2)],
  'series-3': (s) => [...objects(s, 'Session', 3), ...objects(s, 'CacheEntry', 2)],
};
// make-producers.js's scene, whoever made it (Chromium also has a detached <div> subtree)
const producerPicks = (s) => [...objects(s, 'Item', 4), ...objects(s, 'SpecialItem', 1), ...objects(s, 'Widget', 1),
  ...ofType(s, 'closure', 'holdsBig', 1),
  ...spread(s.nodes.filter((x) => x.detached && x.name.startsWith('<div')), 1)];
for (const p of Object.keys(PRODUCERS)) PICKS[p + '-collections'] = producerPicks;
// make-tracked.js's server (allocation tracking on): the leaked Visit objects
const TRACKED = ['node20-tracked', 'node26-tracked'];
for (const n of TRACKED) PICKS[n] = (s) => objects(s, 'Visit', 3);

function manifest(snapDir, old, which = 'make') {
  const info = {};
  const look = (base) => {
    if (!info[base]) {
      const file = path.join(snapDir, base + '.heapsnapshot');
      const snap = loadNodes(file);
      const ids = (PICKS[base] ? PICKS[base](snap) : []).map((x) => x.id);
      info[base] = { snap, ids, size: fs.statSync(file).size };
    }
    return info[base];
  };
  const args = (base, other, nodes = true) => {
    const a = nodes ? ['--nodes'] : [];
    a.push('--top', String(TOP));
    const ids = look(base).ids;
    if (ids.length) a.push('--retainers-of', ids.join(','));
    a.push(base + '.heapsnapshot');
    if (other) a.push(other + '.heapsnapshot');
    return a;
  };
  const entry = (name, base, other, description, nodes = true) => {
    const i = look(base);
    const e = {
      name, snapshot: base + '.heapsnapshot.gz', base: other ? other + '.heapsnapshot.gz' : null,
      golden: name + '.golden.json.gz', description,
      node_count: i.snap.nodeCount, edge_count: i.snap.edgeCount, file_size_bytes: i.size,
      retainers_of: i.ids, oracle_args: args(base, other, nodes),
    };
    if (other) Object.assign(e, { base_node_count: look(other).snap.nodeCount, base_edge_count: look(other).snap.edgeCount });
    return e;
  };
  const out = [];
  // Entries of other producers (make-producers.sh): kept as they are by `manifest`, remade by `producers`.
  const kept = (old || []).filter((e) => e.producer);
  if (which === 'tracked') {
    const made = TRACKED.filter((n) => fs.existsSync(path.join(snapDir, n + '.heapsnapshot')));
    const remade = new Set(made);
    const fresh = made.map((name) => {
      const version = fs.readFileSync(path.join(snapDir, name + '.version'), 'utf8').trim();
      const e = entry(name, name, null, `${version} with allocation tracking on (--track-heap-objects): make-tracked.js's ` +
        'http server that requests itself 100 times, each request leaking a Visit made by recordVisit; the file carries ' +
        'trace_function_infos, trace_tree and a trace_node_id per node');
      return Object.assign({ name, producer: version, tracked: true, layout: look(name).snap.layout }, e);
    });
    return [...(old || []).filter((e) => !remade.has(e.name)), ...fresh];
  }
  if (which === 'producers') {
    const made = Object.keys(PRODUCERS).filter((p) => fs.existsSync(path.join(snapDir, p + '-collections.heapsnapshot')));
    const remade = new Set(made.map((p) => p + '-collections'));
    const fresh = made.map((p) => {
      const name = p + '-collections';
      const version = fs.readFileSync(path.join(snapDir, name + '.version'), 'utf8').trim();
      const e = entry(name, name, null, `${version}: make-producers.js's scene (classes Item/SpecialItem/Widget, ` +
        `closures, Maps, Sets, plain objects of several shapes). Layout: ${PRODUCERS[p].note}`);
      return Object.assign({ name, producer: version, layout: look(name).snap.layout }, e);
    });
    return [...(old || []).filter((e) => !remade.has(e.name)), ...fresh];
  }
  for (const [name, sc] of Object.entries(SCENARIOS)) {
    if (sc.outputs.length === 1) {
      out.push(entry(name, name, null, sc.description));
    } else if (name.startsWith('pair-')) {
      const [b, c] = sc.outputs;
      out.push(entry(b, b, null, `the base snapshot of ${name}, alone (${name}: ${sc.description})`));
      out.push(entry(name, c, b, `${c} with the Comparison against ${b}: ${sc.description}`));
    } else if (name === 'series') {
      const [s1, s2, s3] = sc.outputs;
      const roles = { [s1]: 'baseline', [s2]: 'target', [s3]: 'final' };
      for (const s of sc.outputs) out.push(entry(s, s, null, `the ${roles[s]} snapshot of the series, alone`));
      out.push(entry(`${s2}-vs-1`, s2, s1, 'Comparison of the series target against its baseline (no per-node arrays)', false));
      out.push(entry(`${s3}-vs-2`, s3, s2, 'Comparison of the series final against its target (no per-node arrays)', false));
      out.push({
        name, snapshots: sc.outputs.map((s) => s + '.heapsnapshot.gz'), goldens: sc.outputs.map((s) => s + '.golden.json.gz'),
        comparisons: ['series-2-vs-1.golden.json.gz', 'series-3-vs-2.golden.json.gz'], description: sc.description,
      });
    } else {
      throw new Error('manifest: no rule for scenario ' + name);
    }
  }
  return [...out, ...kept];
}

const readManifest = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const readGolden = (dir, file) => JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(dir, file))).toString('utf8'));

// Facts each file was made to show; a failure means make.js no longer makes what it says.
function verify(manifestFile, dir) {
  const m = readManifest(manifestFile);
  const problems = [];
  const g = (name) => readGolden(dir, m.find((e) => e.name === name).golden);
  const row = (rows, cls) => rows.filter((r) => r.class_name === cls);
  const expect = (cond, what) => { if (!cond) problems.push(what); };

  for (const e of m) {
    if (!e.golden) continue;
    const d = readGolden(dir, e.golden);
    const warned = d.snapshot.warnings.some((w) => /nodes are unreachable from the root/.test(w));
    if (e.name === 'unreachable') expect(warned, 'unreachable: no "nodes are unreachable from the root" warning');
    expect((d.comparison !== null) === (e.base !== null), `${e.name}: comparison ${d.comparison ? 'present' : 'absent'}`);
    const listed = new Set(d.retainers.map((r) => r.id));
    expect(d.retainers.length >= TOP && e.retainers_of.every((id) => listed.has(id)), `${e.name}: retainers lists missing`);
  }
  const items = row(g('collections').summary, 'Item');
  expect(items.length === 2 && items.every((r) => r.class_key !== ',Item'), 'collections: two location-keyed Item rows');
  expect(g('collections').snapshot.interface_definitions.some((x) => x.name === '{host, port}'), 'collections: {host, port} interface');
  const pa = g('pair-a').comparison;
  expect(row(pa, 'Leaky').some((r) => r.new_count === 500 && r.deleted_count === 0), 'pair-a: 500 new Leaky');
  expect(row(pa, 'Doomed').some((r) => r.deleted_count === 200 && r.new_count === 0), 'pair-a: 200 deleted Doomed');
  expect(row(pa, '{host, port, tls}').some((r) => r.new_count >= 50), 'pair-a: 50 new {host, port, tls}');
  expect(row(g('pair-b').comparison, 'RequestRecord').some((r) => r.new_count === 150), 'pair-b: 150 new RequestRecord');
  const sessions = ['series-1', 'series-2', 'series-3'].map((n) => row(g(n).summary, 'Session').reduce((a, r) => a + r.count, 0));
  expect(sessions.join() === '0,300,600', `series: Session counts 0,300,600 (got ${sessions})`);
  const cache = ['series-2', 'series-3'].map((n) => row(g(n).summary, 'CacheEntry').reduce((a, r) => a + r.count, 0));
  expect(cache.join() === '200,200', `series: CacheEntry counts 200,200 (got ${cache})`);
  expect(g('internals').summary.length > 0, 'internals: summary');
  for (const e of m.filter((x) => x.tracked && x.golden)) {
    const d = readGolden(dir, e.golden);
    const visits = row(d.summary, 'Visit').reduce((a, r) => a + r.count, 0);
    expect(visits === 100, `${e.name}: 100 Visit (got ${visits})`);
  }
  for (const e of m.filter((x) => x.producer && x.golden && !x.tracked)) {
    const d = readGolden(dir, e.golden);
    const count = (cls) => row(d.summary, cls).reduce((a, r) => a + r.count, 0);
    // V8 also counts the class's prototype object under the class name; JSC does not
    expect(count('Item') >= 60 && count('Item') <= 61, `${e.name}: 60 Item (got ${count('Item')})`);
    expect(count('Widget') === 20, `${e.name}: 20 Widget (got ${count('Widget')})`);
    expect(count('SpecialItem') === 10, `${e.name}: 10 SpecialItem (got ${count('SpecialItem')})`);
    if (e.name.startsWith('chromium')) expect(count('Detached <div>') === 1 && count('Detached <p>') === 5, `${e.name}: Detached <div> and 5 <p>`);
  }
  const big = g('typed').nodes;
  expect(big !== undefined, 'typed: per-node arrays');
  for (const p of problems) console.error('verify: ' + p);
  if (problems.length) process.exit(1);
  console.error(`verify: ${m.filter((e) => e.golden).length} goldens ok`);
}

function main() {
  const [cmd, a, b] = process.argv.slice(2);
  if ((cmd === 'manifest' || cmd === 'producers' || cmd === 'tracked') && a && (b || cmd === 'manifest')) {
    const old = b && fs.existsSync(b) ? readManifest(b) : [];
    const which = cmd === 'manifest' ? 'make' : cmd;
    process.stdout.write(JSON.stringify(manifest(path.resolve(a), old, which), null, 1) + '\n');
  } else if (cmd === 'snapshots' && a) {
    const files = new Set();
    for (const e of readManifest(a)) for (const f of [e.snapshot, e.base, ...(e.snapshots || [])]) if (f) files.add(f);
    for (const f of files) console.log(f);
  } else if (cmd === 'producer-files' && a) {
    const m = fs.existsSync(a) ? readManifest(a) : [];
    for (const e of m) if (e.producer) for (const f of [e.snapshot, e.base, e.golden]) if (f) console.log(f);
  } else if (cmd === 'jobs' && a) {
    for (const e of readManifest(a)) if (e.golden) console.log([e.golden, ...e.oracle_args].join('\t'));
  } else if (cmd === 'verify' && a && b) {
    verify(a, b);
  } else {
    console.error('usage: node tool.js manifest SNAP_DIR [OLD] | producers SNAP_DIR OLD | tracked SNAP_DIR OLD | producer-files MANIFEST | snapshots MANIFEST | jobs MANIFEST | verify MANIFEST GOLDEN_DIR');
    process.exit(2);
  }
}
main();
