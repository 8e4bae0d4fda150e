// How long Chromium holds each stream before playing it: opens a viewer
// page, lets it play WARM_S seconds, then reads inbound-rtp stats twice,
// HOLD_S seconds apart, and prints per stream the mean jitter-buffer delay
// over that window (jitterBufferDelay / jitterBufferEmittedCount deltas, in
// ms) as JSON. Audio/video sync shows there: the stream that arrives earlier
// than its sender reports say it should is held longer.
//
//   node bench/av-delay.mjs <page-url>      (WARM_S 5, HOLD_S 15)
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// playwright-core as tests/browser installed it (npm ci there).
const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const url = process.argv[2];
const WARM_S = Number(process.env.WARM_S || 5);
const HOLD_S = Number(process.env.HOLD_S || 15);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const profile = mkdtempSync(join(tmpdir(), 'av-delay-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required',
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15000 });
  const sample = () => page.evaluate(async () => {
    const pc = window.whep && window.whep.pc;
    if (!pc) return null;
    const out = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      out[s.kind] = { delay: s.jitterBufferDelay || 0, emitted: s.jitterBufferEmittedCount || 0,
        target: s.jitterBufferTargetDelay || 0, frames: s.framesDecoded || 0, packets: s.packetsReceived || 0 };
    });
    return out;
  });
  const deadline = Date.now() + 20000;
  let first = null;
  while (Date.now() < deadline) {
    first = await sample();
    if (first && first.video && first.video.frames > 0) break;
    await sleep(250);
  }
  if (!first || !first.video || first.video.frames === 0) throw new Error('no video decoded');
  await sleep(WARM_S * 1000);
  const a = await sample();
  await sleep(HOLD_S * 1000);
  const b = await sample();
  const result = {};
  for (const kind of ['video', 'audio']) {
    if (!a[kind] || !b[kind]) continue;
    const emitted = b[kind].emitted - a[kind].emitted;
    result[kind] = {
      jitter_buffer_ms: emitted ? (1000 * (b[kind].delay - a[kind].delay)) / emitted : null,
      target_ms: emitted ? (1000 * (b[kind].target - a[kind].target)) / emitted : null,
      emitted,
    };
  }
  console.log(JSON.stringify(result));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
