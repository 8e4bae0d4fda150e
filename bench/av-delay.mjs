// How long Chromium holds each stream before playing it: opens a viewer
// page, lets it play WARM_S seconds, then reads inbound-rtp stats twice,
// HOLD_S seconds apart, and prints per stream the mean jitter-buffer delay
// over that window (jitterBufferDelay / jitterBufferEmittedCount deltas, in
// ms) as JSON. Audio/video sync shows there: the stream that arrives earlier
// than its sender reports say it should is held longer.
// When the picture carries its capture time (bench/glass-source.cpp), also
// glass to glass: for every frame Chromium presents in that window, its
// expected display time minus the capture time read from its pixels (p50,
// p95, frames read, frames whose stamp did not pass its check). Also, at
// p50, the frame's presentation (handed to the compositor: glass to glass
// without the wait for the display's next refresh, whose phase against a
// 30 fps source is set anew each run, 0-17 ms) and its arrival (the
// encoder and the network alone) minus its capture.
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
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    ...(process.env.CHROMIUM_LOG ? ['--enable-logging=stderr', '--v=' + process.env.CHROMIUM_LOG] : [])],
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
  await page.evaluate(() => {
    // The stamp: two rows of 16 squares in the first 80 rows, 24 bits of
    // capture ms (mod 2^24) and an 8-bit check; see glass-source.cpp.
    const video = document.getElementById('video');
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.glass = { ms: [], presented: [], received: [], unreadable: 0 };
    const read = (_, meta) => {
      const w = video.videoWidth;
      if (w >= 64 && video.videoHeight >= 80) {
        canvas.width = w;
        canvas.height = 80;
        ctx.drawImage(video, 0, 0, w, 80, 0, 0, w, 80);
        const px = ctx.getImageData(0, 0, w, 80).data;
        const cell = Math.floor(w / 16);
        let word = 0;
        for (let bit = 0; bit < 32; bit++) {
          const x = (bit % 16) * cell + (cell >> 1), y = Math.floor(bit / 16) * 40 + 20;
          word = word * 2 + (px[(y * w + x) * 4] > 128 ? 1 : 0);
        }
        const ms = Math.floor(word / 256);
        if (word % 256 === ((((ms >> 16) + (ms >> 8) + ms) & 0xff) ^ 0xa5)) {
          const span = 1 << 24;
          const since = (t) => ((((Math.floor(t) - ms) % span) + span) % span) + (t - Math.floor(t));
          window.glass.ms.push(since(performance.timeOrigin + meta.expectedDisplayTime));
          window.glass.presented.push(since(performance.timeOrigin + meta.presentationTime));
          if (meta.receiveTime) window.glass.received.push(since(performance.timeOrigin + meta.receiveTime));
        } else {
          window.glass.unreadable++;
        }
      }
      video.requestVideoFrameCallback(read);
    };
    video.requestVideoFrameCallback(read);
  });
  const a = await sample();
  await sleep(HOLD_S * 1000);
  const b = await sample();
  const glass = await page.evaluate(() => window.glass);
  const result = {};
  if (glass.ms.length) {
    const at = (values, q) => {
      const sorted = values.slice().sort((x, y) => x - y);
      return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
    };
    result.glass_to_glass = { p50_ms: at(glass.ms, 0.5), p95_ms: at(glass.ms, 0.95),
      presented_p50_ms: at(glass.presented, 0.5), received_p50_ms: at(glass.received, 0.5),
      frames: glass.ms.length, unreadable: glass.unreadable };
  } else {
    result.glass_to_glass = { frames: 0, unreadable: glass.unreadable };
  }
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
