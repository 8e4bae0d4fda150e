// One headless Chromium viewer of a node's page that reports what it
// decoded over a window: used by run-shaped-viewer-test.sh and
// run-layers-test.sh, once in the
// network namespace behind the shaped link and once beside it, and by
// run-turn-viewer-test.sh.
//
// Usage: node watch-stats.mjs <page-url> <label> <window-seconds> <out.json>
//
// Waits for the page to connect (60 s at most), lets it settle 3 s, then
// samples inbound-rtp video (framesDecoded, keyFramesDecoded, pliCount,
// packetsReceived, packetsLost, freezeCount; and audio: inbound-rtp audio
// packetsReceived) at the start and the end of the
// window and writes the differences to out.json, with the picture's width at
// the end (width) and each width it had, sampled every second (widths: a
// change is a move between layers), the selected candidate
// pair's local side (path: type, protocol, relayProtocol, address) and its
// remote candidate (path.remote: "protocol address:port"). Exit status 0 when it
// wrote them, 1 otherwise (the page never connected counts as a result:
// connected=false).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const [pageUrl, label, windowArg, outPath] = process.argv.slice(2);
if (!pageUrl || !label || !windowArg || !outPath) {
  console.error('usage: node watch-stats.mjs <page-url> <label> <window-seconds> <out.json>');
  process.exit(2);
}
const windowMs = Number(windowArg) * 1000;
const log = (msg) => console.log(`[watch ${label}] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const videoStats = (page) => page.evaluate(async () => {
  const pc = window.whep && window.whep.pc;
  if (!pc) return null;
  let video = null, audio = 0;
  for (const s of (await pc.getStats()).values()) {
    if (s.type !== 'inbound-rtp') continue;
    if ((s.kind || s.mediaType) === 'audio') audio = s.packetsReceived ?? 0;
    else if ((s.kind || s.mediaType) === 'video')
      video = { frames: s.framesDecoded ?? 0, keyframes: s.keyFramesDecoded ?? 0, plis: s.pliCount ?? 0,
                packets: s.packetsReceived ?? 0, lost: s.packetsLost ?? 0, freezes: s.freezeCount ?? 0,
                width: s.frameWidth ?? 0 };
  }
  return video && { ...video, audio };
});

// The selected candidate pair: how the media reached us.
const selectedPath = (page) => page.evaluate(async () => {
  const report = await window.whep.pc.getStats();
  let pair = null;
  for (const s of report.values())
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return local ? { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol ?? null,
                   address: local.address, remote: remote ? `${remote.protocol} ${remote.address}:${remote.port}` : null }
               : null;
});

const userDataDir = mkdtempSync(join(tmpdir(), `watch-${label}-`));
let context = null;
let code = 1;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    timeout: 30_000,
  });
  const page = await context.newPage();
  await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: 20_000 });
  const deadline = Date.now() + 60_000;
  let connected = false;
  while (Date.now() < deadline) {
    const s = await videoStats(page);
    if (s && s.packets > 0) { connected = true; break; }
    await sleep(250);
  }
  const result = { label, connected };
  if (connected) {
    await sleep(3000);
    const before = await videoStats(page);
    const started = Date.now();
    // The picture's width each second: a change is a move between layers.
    const widths = [before.width];
    while (Date.now() - started < windowMs) {
      await sleep(Math.min(1000, windowMs - (Date.now() - started)));
      const now = await videoStats(page);
      if (now.width !== widths[widths.length - 1]) widths.push(now.width);
    }
    const after = await videoStats(page);
    const seconds = (Date.now() - started) / 1000;
    for (const k of Object.keys(after)) result[k] = after[k] - before[k];
    result.width = after.width;
    result.widths = widths;
    result.seconds = seconds;
    result.fps = result.frames / seconds;
    result.path = await selectedPath(page);
    // What the page itself shows of its layer (the node's layers event).
    result.page = await page.evaluate(() => ({ layers: window.whep.layers,
                                               text: document.getElementById('stats').textContent }));
  }
  log(JSON.stringify(result));
  writeFileSync(outPath, JSON.stringify(result));
  // THEN_SECONDS: keep watching the width after the window (the caller
  // changes the network once out.json exists): [seconds, width] at each
  // change, to out.json.then.json.
  const thenMs = Number(process.env.THEN_SECONDS || 0) * 1000;
  if (connected && thenMs > 0) {
    const from = Date.now();
    const changes = [[0, result.width]];
    let frames = (await videoStats(page)).frames;
    while (Date.now() - from < thenMs) {
      await sleep(500);
      const now = await videoStats(page);
      if (now.width !== changes[changes.length - 1][1]) changes.push([(Date.now() - from) / 1000, now.width]);
      frames = now.frames;
    }
    const then = { label, changes, frames };
    log(`then: ${JSON.stringify(then)}`);
    writeFileSync(`${outPath}.then.json`, JSON.stringify(then));
  }
  code = 0;
} catch (e) {
  log(`error: ${e.message}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
