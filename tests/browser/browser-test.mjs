// End-to-end browser test of the WHEP viewer page.
//
// Usage: node browser-test.mjs <page-url> <screenshot-path>
//
// Launches Debian's headless Chromium, opens the viewer page served by broadcastsink, waits
// until video is playing, checks that decoded video frames keep increasing and that audio
// RTP packets arrive, and saves a screenshot. Exit status 0 = PASS, 1 = FAIL.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';

const TOTAL_TIMEOUT_MS = 60_000;
const VIDEO_DEADLINE_MS = 20_000;
const GROWTH_WINDOW_MS = 3_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const [pageUrl, screenshotArg] = process.argv.slice(2);
if (!pageUrl || !screenshotArg) {
  console.error('usage: node browser-test.mjs <page-url> <screenshot-path>');
  process.exit(2);
}
const screenshotPath = resolve(screenshotArg);

const consoleLines = [];
let context = null;
let page = null;
let userDataDir = null;
let finished = false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(`[browser-test] ${msg}`);

async function diagnostics() {
  console.log('---- page console messages ----');
  if (consoleLines.length === 0) console.log('(none)');
  for (const l of consoleLines) console.log(l);
  console.log('---- end of console messages ----');
  if (!page) return;
  try {
    const info = await Promise.race([
      page.evaluate(() => ({
        status: document.getElementById('status')?.textContent ?? '(no #status element)',
        stats: document.getElementById('stats')?.textContent ?? '(no #stats element)',
        whepState: window.whep ? window.whep.state : '(window.whep missing)',
        sessionUrl: window.whep ? window.whep.sessionUrl : null,
        connectionState: window.whep && window.whep.pc ? window.whep.pc.connectionState : null,
        iceConnectionState: window.whep && window.whep.pc ? window.whep.pc.iceConnectionState : null,
        localSdp: window.whep && window.whep.pc && window.whep.pc.localDescription ? window.whep.pc.localDescription.sdp : null,
        remoteSdp: window.whep && window.whep.pc && window.whep.pc.remoteDescription ? window.whep.pc.remoteDescription.sdp : null,
      })),
      sleep(5000).then(() => { throw new Error('timed out reading page state'); }),
    ]);
    console.log(`#status: ${info.status}`);
    console.log(`#stats: ${info.stats}`);
    console.log(`whep.state=${info.whepState} sessionUrl=${info.sessionUrl} ` +
      `connectionState=${info.connectionState} iceConnectionState=${info.iceConnectionState}`);
    if (info.localSdp) console.log(`---- local offer SDP ----\n${info.localSdp.trim()}`);
    if (info.remoteSdp) console.log(`---- remote answer SDP ----\n${info.remoteSdp.trim()}`);
  } catch (e) {
    console.log(`(could not read page state: ${e.message})`);
  }
}

async function cleanup() {
  if (context) { try { await Promise.race([context.close(), sleep(5000)]); } catch { /* ignore */ } }
  context = null;
  if (userDataDir) { try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ } }
}

async function fail(reason) {
  if (finished) return;
  finished = true;
  console.log(`FAIL: ${reason}`);
  await diagnostics();
  if (page) {
    try { mkdirSync(dirname(screenshotPath), { recursive: true }); await page.screenshot({ path: screenshotPath, timeout: 5000 }); log(`screenshot (failure state) saved to ${screenshotPath}`); } catch { /* ignore */ }
  }
  await cleanup();
  process.exit(1);
}

const overall = setTimeout(() => { fail(`total timeout of ${TOTAL_TIMEOUT_MS / 1000} s exceeded`); }, TOTAL_TIMEOUT_MS);

// Reads the inbound-rtp stats of the current peer connection of the page.
async function sampleStats() {
  return page.evaluate(async () => {
    const pc = window.whep && window.whep.pc;
    if (!pc) return { error: 'window.whep.pc is not set' };
    const report = await pc.getStats();
    const out = { video: null, audio: null };
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const kind = s.kind || s.mediaType;
      if (kind === 'video') out.video = { framesDecoded: s.framesDecoded ?? 0, packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, codecId: s.codecId, pliCount: s.pliCount ?? 0, keyFramesDecoded: s.keyFramesDecoded ?? 0, framesDropped: s.framesDropped ?? 0 };
      else if (kind === 'audio') out.audio = { packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, audioLevel: s.audioLevel, totalSamplesReceived: s.totalSamplesReceived ?? 0, concealedSamples: s.concealedSamples ?? 0 };
    });
    return out;
  });
}

async function main() {
  userDataDir = mkdtempSync(join(tmpdir(), 'browser-test-profile-'));
  log(`launching ${CHROMIUM} (profile ${userDataDir})`);
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
    timeout: 30_000,
  });
  page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => consoleLines.push(`[requestfailed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.request().method() !== 'GET' || r.status() >= 400) consoleLines.push(`[http] ${r.request().method()} ${r.url()} -> ${r.status()}`);
  });

  log(`opening ${pageUrl}`);
  const resp = await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  if (!resp || !resp.ok()) return fail(`page load failed: HTTP ${resp ? resp.status() : '(no response)'}`);

  // Wait for the first decoded video frame.
  const deadline = Date.now() + VIDEO_DEADLINE_MS;
  let dims = { w: 0, h: 0 };
  while (Date.now() < deadline) {
    dims = await page.evaluate(() => {
      const v = document.getElementById('video');
      return v ? { w: v.videoWidth, h: v.videoHeight } : { w: -1, h: -1 };
    });
    if (dims.w === -1) return fail('page has no <video id="video"> element');
    if (dims.w > 0) break;
    await sleep(200);
  }
  if (!(dims.w > 0)) return fail(`no video within ${VIDEO_DEADLINE_MS / 1000} s (videoWidth=${dims.w}, videoHeight=${dims.h})`);
  log(`video playing: videoWidth=${dims.w} videoHeight=${dims.h}`);

  const before = await sampleStats();
  if (before.error) return fail(before.error);
  if (!before.video) return fail('no inbound-rtp video stats');
  await sleep(GROWTH_WINDOW_MS);
  const after = await sampleStats();
  if (after.error) return fail(after.error);
  if (!after.video) return fail('inbound-rtp video stats disappeared');

  const framesBefore = before.video.framesDecoded;
  const framesAfter = after.video.framesDecoded;
  const audioPackets = after.audio ? after.audio.packetsReceived : 0;
  log(`videoWidth=${dims.w} videoHeight=${dims.h}`);
  log(`framesDecoded before=${framesBefore} after=${framesAfter} (+${framesAfter - framesBefore} in ${GROWTH_WINDOW_MS / 1000} s)`);
  log(`video packetsReceived=${after.video.packetsReceived} bytesReceived=${after.video.bytesReceived}`);
  const plisInWindow = after.video.pliCount - before.video.pliCount;
  log(`video pliCount=${after.video.pliCount} (+${plisInWindow} in the window) keyFramesDecoded=${after.video.keyFramesDecoded} framesDropped=${after.video.framesDropped}`);
  log(`audio packetsReceived=${audioPackets}` + (after.audio ? ` bytesReceived=${after.audio.bytesReceived} audioLevel=${after.audio.audioLevel}` : ' (no inbound-rtp audio stats)'));

  // The page's live viewer count comes from the WHEP server-sent events
  // extension (the page subscribes once its offer is answered): this
  // browser is the broadcast's one viewer.
  let shown = null;
  const countDeadline = Date.now() + 5_000;
  while (Date.now() < countDeadline) {
    shown = await page.evaluate(() => ({ count: window.whep.viewerCount, text: document.getElementById('viewers').textContent }));
    if (shown.count === 1) break;
    await sleep(100);
  }
  log(`viewer count on the page: ${JSON.stringify(shown)}`);
  if (!shown || shown.count !== 1 || shown.text !== '1 watching') return fail(`the page shows no viewer count of 1 from the event stream (${JSON.stringify(shown)})`);

  mkdirSync(dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, timeout: 10_000 });
  log(`screenshot saved to ${screenshotPath}`);

  const problems = [];
  if (!(framesAfter > framesBefore)) problems.push(`framesDecoded did not grow over ${GROWTH_WINDOW_MS / 1000} s (${framesBefore} -> ${framesAfter})`);
  // A healthy stream needs no keyframe requests once playing; a browser that
  // keeps asking (one PLI per keyframe-min-interval) means every keyframe we
  // send is broken for it.
  if (plisInWindow > 1) problems.push(`${plisInWindow} PLIs in ${GROWTH_WINDOW_MS / 1000} s: the browser keeps asking for keyframes`);
  const samplesBefore = before.audio ? before.audio.totalSamplesReceived : 0;
  const samplesAfter = after.audio ? after.audio.totalSamplesReceived : 0;
  const concealed = after.audio ? after.audio.concealedSamples - (before.audio ? before.audio.concealedSamples : 0) : 0;
  log(`audio samples decoded +${samplesAfter - samplesBefore} in the window (concealed +${concealed})`);
  // Opus at 48 kHz: 3 s of sound is 144000 samples; half of that proves it decodes.
  if (!(samplesAfter - samplesBefore > 72000)) problems.push(`audio did not decode: ${samplesAfter - samplesBefore} samples in ${GROWTH_WINDOW_MS / 1000} s`);
  if (!(audioPackets > 0)) problems.push(`no audio packets received (packetsReceived=${audioPackets})`);
  if (problems.length) return fail(problems.join('; '));

  // The node prefers AEAD_AES_128_GCM (cheaper per packet) and Chromium
  // offers it: the picture and sound above came through our GCM SRTP and
  // Chromium's RTCP through our GCM SRTCP.
  const transport = await page.evaluate(async () => {
    const report = await window.whep.pc.getStats();
    let t = null;
    report.forEach((s) => { if (s.type === 'transport') t = { srtpCipher: s.srtpCipher, dtlsCipher: s.dtlsCipher, dtlsState: s.dtlsState }; });
    return t;
  });
  log(`transport: ${JSON.stringify(transport)}`);
  if (!transport || transport.srtpCipher !== 'SRTP_AEAD_AES_128_GCM') return fail(`SRTP is not SRTP_AEAD_AES_128_GCM: ${JSON.stringify(transport)}`);

  // Media stops for a viewer that does not answer our consent checks
  // (RFC 7675): Chromium must answer them on the selected pair. The first
  // goes out 4-6 s after the first connectivity check.
  const consentDeadline = Date.now() + 10_000;
  let pair = null;
  while (Date.now() < consentDeadline) {
    pair = await page.evaluate(async () => {
      const report = await window.whep.pc.getStats();
      let selected = null;
      report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') selected = { requestsReceived: s.requestsReceived ?? 0, responsesSent: s.responsesSent ?? 0 }; });
      return selected;
    });
    if (pair && pair.responsesSent > 0) break;
    await sleep(250);
  }
  log(`selected pair: ${JSON.stringify(pair)}`);
  if (!pair || !(pair.responsesSent > 0)) return fail(`Chromium answered none of our consent checks in 10 s (${JSON.stringify(pair)})`);

  finished = true;
  clearTimeout(overall);
  console.log(`PASS: video ${dims.w}x${dims.h}, framesDecoded ${framesBefore} -> ${framesAfter}, audio packets ${audioPackets}`);
  await cleanup();
  process.exit(0);
}

main().catch((e) => fail(`exception: ${e && e.stack ? e.stack : e}`));
