#!/usr/bin/env node
// PouchDB push-replication throughput on loopback: PouchDB 9 (leveldb on disk) -> pouchdb-server 4.2 (leveldb on
// disk), on the records export_records.py wrote (the change-log payloads bench/push_bench.py pushes).
//
// Each run: a fresh pouchdb-server process on a free loopback port (its data and log in a temp folder), a fresh
// local on-disk PouchDB loaded with the records (not timed), a fresh remote database created (not timed); then
// PouchDB.replicate(local, remote) is timed. Between the two sits a counting TCP proxy in this process, so the
// bytes are every byte of the HTTP requests and answers, headers included; requests are counted by the fetch
// PouchDB is given. Two settings, interleaved run by run: PouchDB's defaults (batch_size 100, batches_limit 10)
// and batch_size 1000.
//
//   node push.js [--records data/records.jsonl] [--runs 5] [--keep]

'use strict';

const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const http = require('http');
const { spawn } = require('child_process');
const PouchDB = require('pouchdb');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const RECORDS = path.resolve(arg('records', path.join(__dirname, 'data', 'records.jsonl')));
const RUNS = parseInt(arg('runs', '5'), 10);
const KEEP = process.argv.includes('--keep');
const SERVER_BIN = require.resolve('pouchdb-server/bin/pouchdb-server');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)); }).on('error', reject);
  });
}

async function startServer(dir) {
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
  const proc = spawn(process.execPath, [SERVER_BIN, '--host', '127.0.0.1', '--port', String(port),
    '--dir', path.join(dir, 'db'), '--config', path.join(dir, 'config.json'), '--no-stdout-logs'],
  { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error('pouchdb-server exited: ' + stderr);
    try { if (await get(`http://127.0.0.1:${port}/`) === 200) return { proc, port }; } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('pouchdb-server did not answer: ' + stderr);
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
}

// A TCP proxy that counts the bytes each way and the connections.
async function startProxy(targetPort) {
  const stats = { up: 0, down: 0, connections: 0 };
  const sockets = new Set();
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client); sockets.add(upstream);
    client.on('data', (d) => { stats.up += d.length; });
    upstream.on('data', (d) => { stats.down += d.length; });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', end); upstream.on('error', end);
    client.on('close', end); upstream.on('close', end);
  });
  const port = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  return {
    port, stats,
    reset() { stats.up = 0; stats.down = 0; stats.connections = 0; },
    close() { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

function loadDocs(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function fillLocal(dbPath, docs) {
  const local = new PouchDB(dbPath);   // on-disk leveldb (leveldown)
  for (let i = 0; i < docs.length; i += 1000) {
    const res = await local.bulkDocs(docs.slice(i, i + 1000).map((d) => ({ ...d })));
    const bad = res.filter((r) => r.error);
    if (bad.length) throw new Error('local bulkDocs refused: ' + JSON.stringify(bad[0]));
  }
  const info = await local.info();
  if (info.doc_count !== docs.length) throw new Error(`local holds ${info.doc_count} docs, not ${docs.length}`);
  return local;
}

async function oneRun(docs, opts, label, n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spoke-pouch-bench-'));
  const { proc, port } = await startServer(path.join(dir, 'server'));
  const proxy = await startProxy(port);
  try {
    const local = await fillLocal(path.join(dir, 'local'), docs);
    let requests = 0;
    const fetch = (url, o) => { requests++; return PouchDB.fetch(url, o); };
    const remote = new PouchDB(`http://127.0.0.1:${proxy.port}/bench_${n}`, { fetch });
    await remote.info();   // creates the database, as push_bench enrols before it times
    requests = 0;
    proxy.reset();
    const t0 = process.hrtime.bigint();
    const result = await PouchDB.replicate(local, remote, opts);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const wire = { requests, up: proxy.stats.up, down: proxy.stats.down, connections: proxy.stats.connections };
    if (!result.ok || result.docs_written !== docs.length) {
      throw new Error('replication did not write every doc: ' + JSON.stringify({ ...result, docs: undefined }));
    }
    const rinfo = await remote.info();
    if (rinfo.doc_count !== docs.length) throw new Error(`remote holds ${rinfo.doc_count} docs, not ${docs.length}`);
    await local.close();
    await remote.close();
    const r = { label, seconds, rate: docs.length / seconds, ...wire, perRecord: (wire.up + wire.down) / docs.length };
    console.log(`  ${label.padEnd(26)} run ${n}: ${seconds.toFixed(2)} s = ${Math.round(r.rate).toLocaleString('en')} records/s, `
      + `${r.requests} requests (${r.connections} connections), ${r.perRecord.toFixed(1)} B/record `
      + `(${r.up.toLocaleString('en')} up, ${r.down.toLocaleString('en')} down)`);
    return r;
  } finally {
    await proxy.close();
    await stopServer(proc);
    if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const docs = loadDocs(RECORDS);
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(JSON.stringify(d)), 0);
  const v = (p) => require(p + '/package.json').version;
  console.log(`records: ${docs.length.toLocaleString('en')} from ${path.relative(process.cwd(), RECORDS) || RECORDS} `
    + `(${Math.round(bytes / docs.length)} B each as compact JSON with _id and type)`);
  console.log(`pouchdb ${v('pouchdb')} (leveldown ${v('leveldown')}) -> pouchdb-server ${v('pouchdb-server')} `
    + `(express-pouchdb ${v('express-pouchdb')}, leveldown ${require(require.resolve('leveldown/package.json',
      { paths: [path.dirname(require.resolve('pouchdb-adapter-leveldb'))] })).version}), node ${process.version}, `
    + `${RUNS} runs each, fresh server and databases per run`);
  const settings = [
    ['defaults (batch_size 100)', {}],
    ['batch_size 1000', { batch_size: 1000 }],
  ];
  const results = settings.map(() => []);
  for (let i = 1; i <= RUNS; i++) {
    for (let k = 0; k < settings.length; k++) {
      results[k].push(await oneRun(docs, settings[k][1], settings[k][0], i));
    }
  }
  console.log('median:');
  settings.forEach(([label], k) => {
    const rs = results[k];
    console.log(`  ${label.padEnd(26)} ${Math.round(median(rs.map((r) => r.rate))).toLocaleString('en')} records/s `
      + `(runs: ${rs.map((r) => Math.round(r.rate).toLocaleString('en')).join(', ')}), `
      + `${median(rs.map((r) => r.requests))} requests, ${median(rs.map((r) => r.perRecord)).toFixed(1)} B/record on the wire`);
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
