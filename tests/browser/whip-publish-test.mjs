// End-to-end WHIP ingest test: headless Chromium publishes to relaysrc, a viewer plays it.
//
// Usage: node whip-publish-test.mjs <whip-url> <viewer-page-url> <token> [screenshot-path]
//
// Launches Debian's headless Chromium with a fake camera and microphone. A publisher page
// (served by request interception on the WHIP server's origin, so getUserMedia runs in a
// secure context and the WHIP POSTs are same-origin) checks that:
//   1. a POST without a token and one with a wrong token get 401;
//   2. the real offer with the token gets 201, a Location and an answer Chromium accepts,
//      and the publisher's connection reaches 'connected';
//   3. a second publisher while the first is live gets 409;
//   4. the relay's own viewer page (broadcastsink's WHEP server) decodes the published video
//      (framesDecoded grows by more than 30 in the window, frameWidth > 0) and receives audio
//      (inbound-rtp audio packetsReceived grows);
//   5. DELETE of the publisher's session (the Location URL) gets 401 without the token, 200 with it.
// Exit status 0 = PASS, 1 = FAIL. WHIP_TEST_VERBOSE=1 also prints the offer and answer SDPs.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';

const TOTAL_TIMEOUT_MS = 100_000;
const ICE_GATHER_DEADLINE_MS = 5_000;
const CONNECT_DEADLINE_MS = 15_000;
const VIDEO_DEADLINE_MS = 25_000;
const GROWTH_WINDOW_MS = 3_000;
const MIN_FRAMES_IN_WINDOW = 30;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const [whipUrl, viewerUrl, token, screenshotArg] = process.argv.slice(2);
if (!whipUrl || !viewerUrl || !token) {
  console.error('usage: node whip-publish-test.mjs <whip-url> <viewer-page-url> <token> [screenshot-path]');
  process.exit(2);
}
const screenshotPath = screenshotArg ? resolve(screenshotArg) : null;
const publisherPageUrl = new URL('/whip-publish-test.html', whipUrl).href;

const consoleLines = [];
let context = null;
let pubPage = null;
let viewPage = null;
let userDataDir = null;
let finished = false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(`[whip-test] ${msg}`);

// The publisher page: everything runs in the browser, driven through window.t.
const PUBLISHER_HTML = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>WHIP publisher test</title></head>
<body><video id="preview" autoplay muted playsinline width="320" height="180"></video>
<script>
'use strict';
window.t = {
  stream: null,
  pcs: {},
  async media() {
    if (!window.isSecureContext) throw new Error('page is not a secure context: ' + location.href);
    const s = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    this.stream = s;
    document.getElementById('preview').srcObject = s;
    const v = s.getVideoTracks()[0];
    return { video: s.getVideoTracks().length, audio: s.getAudioTracks().length,
             settings: v ? v.getSettings() : null, label: v ? v.label : null };
  },
  // A sendonly offer with the camera and microphone, after ICE gathering completes.
  async offer(name, gatherMs) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pcs[name] = pc;
    for (const track of this.stream.getTracks())
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((res) => {
        const timer = setTimeout(res, gatherMs);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(timer); res(); }
        });
      });
    }
    return { sdp: pc.localDescription.sdp, gathering: pc.iceGatheringState };
  },
  async post(sdp, authorization) {
    const headers = { 'Content-Type': 'application/sdp' };
    if (authorization !== null) headers.Authorization = authorization;
    const r = await fetch('/whip', { method: 'POST', headers, body: sdp });
    return { status: r.status, location: r.headers.get('Location'), contentType: r.headers.get('Content-Type'),
             wwwAuthenticate: r.headers.get('WWW-Authenticate'), body: await r.text() };
  },
  async answer(name, sdp) {
    try { await this.pcs[name].setRemoteDescription({ type: 'answer', sdp }); return null; }
    catch (e) { return String(e && e.message || e); }
  },
  state(name) {
    const pc = this.pcs[name];
    if (!pc) return null;
    return { connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState,
             local: pc.localDescription && pc.localDescription.sdp, remote: pc.remoteDescription && pc.remoteDescription.sdp };
  },
  async outbound(name) {
    const pc = this.pcs[name];
    const report = await pc.getStats();
    const out = { video: null, audio: null, codecs: {} };
    report.forEach((s) => { if (s.type === 'codec') out.codecs[s.id] = s.mimeType + (s.sdpFmtpLine ? ' ' + s.sdpFmtpLine : ''); });
    report.forEach((s) => {
      if (s.type !== 'outbound-rtp') return;
      const o = { packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0, codec: out.codecs[s.codecId] || s.codecId,
                  framesEncoded: s.framesEncoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
                  encoderImplementation: s.encoderImplementation, pliCount: s.pliCount, nackCount: s.nackCount,
                  qualityLimitationReason: s.qualityLimitationReason };
      out[s.kind || s.mediaType] = o;
    });
    delete out.codecs;
    return out;
  },
  close(name) { const pc = this.pcs[name]; if (pc) pc.close(); },
  async del(url, auth) { const r = await fetch(url, { method: 'DELETE', headers: auth ? { Authorization: auth } : {} }); return { status: r.status, body: await r.text() }; },
};
</script></body></html>`;

async function withTimeout(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: no result within ${ms / 1000} s`)), ms); })]);
  } finally { clearTimeout(timer); }
}

async function diagnostics() {
  console.log('---- page console messages ----');
  if (consoleLines.length === 0) console.log('(none)');
  for (const l of consoleLines) console.log(l);
  console.log('---- end of console messages ----');
  if (pubPage) {
    try {
      const st = await withTimeout(pubPage.evaluate(() => ({ main: window.t && window.t.state('main'), second: window.t && window.t.state('second') })), 5000, 'publisher state');
      for (const [name, s] of Object.entries(st)) {
        if (!s) continue;
        console.log(`publisher pc '${name}': connectionState=${s.connectionState} iceConnectionState=${s.iceConnectionState}`);
        if (name === 'main' && s.local) console.log(`---- publisher offer SDP ----\n${s.local.trim()}`);
        if (name === 'main' && s.remote) console.log(`---- relay answer SDP ----\n${s.remote.trim()}`);
      }
      const out = await withTimeout(pubPage.evaluate(() => window.t.pcs.main ? window.t.outbound('main') : null), 5000, 'publisher stats');
      if (out) console.log(`publisher outbound-rtp: ${JSON.stringify(out)}`);
    } catch (e) { console.log(`(could not read publisher state: ${e.message})`); }
  }
  if (viewPage) {
    try {
      const info = await withTimeout(viewPage.evaluate(() => ({
        status: document.getElementById('status')?.textContent,
        stats: document.getElementById('stats')?.textContent,
        whepState: window.whep ? window.whep.state : '(window.whep missing)',
        connectionState: window.whep && window.whep.pc ? window.whep.pc.connectionState : null,
        remoteSdp: window.whep && window.whep.pc && window.whep.pc.remoteDescription ? window.whep.pc.remoteDescription.sdp : null,
      })), 5000, 'viewer state');
      console.log(`viewer #status: ${info.status}`);
      console.log(`viewer #stats: ${info.stats}`);
      console.log(`viewer whep.state=${info.whepState} connectionState=${info.connectionState}`);
      if (info.remoteSdp) console.log(`---- viewer's WHEP answer SDP ----\n${info.remoteSdp.trim()}`);
    } catch (e) { console.log(`(could not read viewer state: ${e.message})`); }
  }
}

async function cleanup() {
  if (context) { try { await Promise.race([context.close(), sleep(5000)]); } catch { /* ignore */ } }
  context = null;
  if (userDataDir) { try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ } }
}

async function screenshot(what) {
  if (!viewPage || !screenshotPath) return;
  try {
    mkdirSync(dirname(screenshotPath), { recursive: true });
    await viewPage.screenshot({ path: screenshotPath, timeout: 5000 });
    log(`viewer screenshot (${what}) saved to ${screenshotPath}`);
  } catch { /* ignore */ }
}

async function fail(reason) {
  if (finished) return;
  finished = true;
  console.log(`FAIL: ${reason}`);
  await diagnostics();
  await screenshot('failure state');
  await cleanup();
  process.exit(1);
}

const overall = setTimeout(() => { fail(`total timeout of ${TOTAL_TIMEOUT_MS / 1000} s exceeded`); }, TOTAL_TIMEOUT_MS);

function attachLogging(page, tag) {
  page.on('console', (m) => consoleLines.push(`[${tag} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[${tag} pageerror] ${e.message}`));
  page.on('requestfailed', (r) => consoleLines.push(`[${tag} requestfailed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.request().method() !== 'GET' || r.status() >= 400) consoleLines.push(`[${tag} http] ${r.request().method()} ${r.url()} -> ${r.status()}`);
  });
}

// Inbound-rtp stats of the viewer page's current WHEP session.
async function viewerStats() {
  return viewPage.evaluate(async () => {
    const pc = window.whep && window.whep.pc;
    if (!pc) return { error: 'window.whep.pc is not set' };
    const report = await pc.getStats();
    const codecs = {};
    report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
    const out = { video: null, audio: null };
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const kind = s.kind || s.mediaType;
      if (kind === 'video') out.video = { framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0, packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, codec: codecs[s.codecId] || s.codecId, pliCount: s.pliCount ?? 0, keyFramesDecoded: s.keyFramesDecoded ?? 0, framesDropped: s.framesDropped ?? 0, decoderImplementation: s.decoderImplementation };
      else if (kind === 'audio') out.audio = { packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, codec: codecs[s.codecId] || s.codecId, totalSamplesReceived: s.totalSamplesReceived ?? 0, concealedSamples: s.concealedSamples ?? 0, audioLevel: s.audioLevel };
    });
    return out;
  });
}

function sdpCodecs(sdp) {
  // "video: VP8/90000, ..." from the rtpmap lines of each m-section (for the log).
  const out = [];
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const kind = section.split(' ')[0];
    const port = section.split(' ')[1];
    const maps = [...section.matchAll(/a=rtpmap:(\d+) ([^\r\n]+)/g)].map((m) => `${m[1]} ${m[2]}`);
    const dir = (section.match(/a=(sendonly|recvonly|sendrecv|inactive)/) || [])[1];
    out.push(`${kind} port=${port} ${dir || '?'} [${maps.join(', ')}]`);
  }
  return out.join('; ');
}

async function main() {
  userDataDir = mkdtempSync(join(tmpdir(), 'whip-test-profile-'));
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
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
    ],
    timeout: 30_000,
  });

  // The publisher page lives on the WHIP server's origin (http://127.0.0.1 is a secure
  // context, and the POSTs to /whip are same-origin); only this one URL is intercepted.
  await context.route(publisherPageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PUBLISHER_HTML }));
  pubPage = context.pages()[0] || await context.newPage();
  attachLogging(pubPage, 'publisher');
  log(`opening publisher page ${publisherPageUrl}`);
  await pubPage.goto(publisherPageUrl, { waitUntil: 'load', timeout: 15_000 });

  const media = await withTimeout(pubPage.evaluate(() => window.t.media()), 10_000, 'getUserMedia');
  log(`getUserMedia: ${media.video} video track(s) '${media.label}' ${media.settings ? `${media.settings.width}x${media.settings.height}@${media.settings.frameRate}` : ''}, ${media.audio} audio track(s)`);
  if (media.video !== 1 || media.audio !== 1) return fail(`getUserMedia gave ${media.video} video and ${media.audio} audio tracks, expected 1 and 1`);

  const offer = await withTimeout(pubPage.evaluate(([ms]) => window.t.offer('main', ms), [ICE_GATHER_DEADLINE_MS]), ICE_GATHER_DEADLINE_MS + 5000, 'publisher offer');
  if (offer.gathering !== 'complete') return fail(`publisher ICE gathering not complete within ${ICE_GATHER_DEADLINE_MS / 1000} s (state ${offer.gathering})`);
  const candidates = (offer.sdp.match(/a=candidate:[^\r\n]+/g) || []);
  log(`publisher offer: ${offer.sdp.length} bytes, ${candidates.length} candidate(s); ${sdpCodecs(offer.sdp)}`);
  if (candidates.length === 0) return fail('publisher offer has no ICE candidates');

  // (1) authentication
  const post = (sdp, auth) => withTimeout(pubPage.evaluate(([s, a]) => window.t.post(s, a), [sdp, auth]), 15_000, 'WHIP POST');
  const noToken = await post(offer.sdp, null);
  log(`(1) POST without token -> ${noToken.status} (WWW-Authenticate: ${noToken.wwwAuthenticate}) ${noToken.body.trim()}`);
  if (noToken.status !== 401) return fail(`POST without a token: expected 401, got ${noToken.status}: ${noToken.body.trim()}`);
  const wrongToken = await post(offer.sdp, `Bearer ${token}-wrong`);
  log(`(1) POST with wrong token -> ${wrongToken.status} ${wrongToken.body.trim()}`);
  if (wrongToken.status !== 401) return fail(`POST with a wrong token: expected 401, got ${wrongToken.status}: ${wrongToken.body.trim()}`);

  // (2) the real publish
  const t0 = Date.now();
  const ok = await post(offer.sdp, `Bearer ${token}`);
  log(`(2) POST with token -> ${ok.status} in ${Date.now() - t0} ms, Location: ${ok.location}, Content-Type: ${ok.contentType}`);
  if (ok.status !== 201) return fail(`POST with the token: expected 201, got ${ok.status}: ${ok.body.trim()}`);
  if (!ok.location) return fail('201 without a Location header');
  const sessionUrl = new URL(ok.location, whipUrl).href;
  log(`relay answer: ${sdpCodecs(ok.body)}`);
  if (process.env.WHIP_TEST_VERBOSE) console.log(`---- publisher offer SDP ----\n${offer.sdp.trim()}\n---- relay answer SDP ----\n${ok.body.trim()}`);
  const answerError = await pubPage.evaluate(([s]) => window.t.answer('main', s), [ok.body]);
  if (answerError) {
    console.log(`---- refused answer SDP ----\n${ok.body.trim()}`);
    return fail(`Chromium refused the relay's answer: ${answerError}`);
  }
  let st = null;
  const connectDeadline = Date.now() + CONNECT_DEADLINE_MS;
  while (Date.now() < connectDeadline) {
    st = await pubPage.evaluate(() => window.t.state('main'));
    if (st.connectionState === 'connected' || st.connectionState === 'failed') break;
    await sleep(100);
  }
  if (st.connectionState !== 'connected') return fail(`publisher connection not 'connected' within ${CONNECT_DEADLINE_MS / 1000} s (connectionState=${st.connectionState}, ice=${st.iceConnectionState})`);
  log(`(2) publisher connected ${Date.now() - t0} ms after the POST`);

  // (3) a second publisher while the first is live
  const offer2 = await withTimeout(pubPage.evaluate(([ms]) => window.t.offer('second', ms), [ICE_GATHER_DEADLINE_MS]), ICE_GATHER_DEADLINE_MS + 5000, 'second publisher offer');
  const second = await post(offer2.sdp, `Bearer ${token}`);
  log(`(3) second publisher POST -> ${second.status} ${second.body.trim()}`);
  await pubPage.evaluate(() => window.t.close('second'));
  if (second.status !== 409) {
    if (second.status === 201 && second.location) await pubPage.evaluate(([u]) => window.t.del(u), [new URL(second.location, whipUrl).href]).catch(() => {});
    return fail(`second publisher while the first is live: expected 409, got ${second.status}: ${second.body.trim()}`);
  }

  // (4) a viewer decodes what the browser publishes
  viewPage = await context.newPage();
  attachLogging(viewPage, 'viewer');
  log(`opening viewer page ${viewerUrl}`);
  const resp = await viewPage.goto(viewerUrl, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  if (!resp || !resp.ok()) return fail(`viewer page load failed: HTTP ${resp ? resp.status() : '(no response)'}`);
  const tv = Date.now();
  const videoDeadline = tv + VIDEO_DEADLINE_MS;
  let first = null;
  while (Date.now() < videoDeadline) {
    const s = await viewerStats();
    if (!s.error && s.video && s.video.framesDecoded > 0 && s.video.frameWidth > 0) { first = s; break; }
    await sleep(200);
  }
  if (!first) return fail(`viewer decoded no video within ${VIDEO_DEADLINE_MS / 1000} s`);
  log(`(4) viewer decoded its first frames ${Date.now() - tv} ms after opening the page (${first.video.frameWidth}x${first.video.frameHeight}, ${first.video.codec})`);
  const before = await viewerStats();
  await sleep(GROWTH_WINDOW_MS);
  const after = await viewerStats();
  if (after.error || !after.video) return fail(`viewer stats disappeared: ${after.error || 'no inbound-rtp video'}`);
  const pub = await pubPage.evaluate(() => window.t.outbound('main'));
  const frames = after.video.framesDecoded - before.video.framesDecoded;
  const audioBefore = before.audio ? before.audio.packetsReceived : 0;
  const audioAfter = after.audio ? after.audio.packetsReceived : 0;
  const samples = (after.audio ? after.audio.totalSamplesReceived : 0) - (before.audio ? before.audio.totalSamplesReceived : 0);
  if (pub.video) log(`publisher video: ${pub.video.codec} ${pub.video.frameWidth}x${pub.video.frameHeight} framesEncoded=${pub.video.framesEncoded} packetsSent=${pub.video.packetsSent} encoder=${pub.video.encoderImplementation} pliCount=${pub.video.pliCount} nackCount=${pub.video.nackCount} qualityLimitation=${pub.video.qualityLimitationReason}`);
  if (pub.audio) log(`publisher audio: ${pub.audio.codec} packetsSent=${pub.audio.packetsSent}`);
  log(`viewer video: ${after.video.codec} ${after.video.frameWidth}x${after.video.frameHeight} framesDecoded ${before.video.framesDecoded} -> ${after.video.framesDecoded} (+${frames} in ${GROWTH_WINDOW_MS / 1000} s) packetsReceived=${after.video.packetsReceived} keyFramesDecoded=${after.video.keyFramesDecoded} pliCount=${after.video.pliCount} framesDropped=${after.video.framesDropped} decoder=${after.video.decoderImplementation}`);
  log(`viewer audio: ${after.audio ? after.audio.codec : '(none)'} packetsReceived ${audioBefore} -> ${audioAfter} (+${audioAfter - audioBefore}), samples decoded +${samples}`);
  await screenshot('playing');

  const problems = [];
  if (!(frames > MIN_FRAMES_IN_WINDOW)) problems.push(`viewer framesDecoded grew by ${frames} in ${GROWTH_WINDOW_MS / 1000} s, expected more than ${MIN_FRAMES_IN_WINDOW}`);
  if (!(after.video.frameWidth > 0)) problems.push(`viewer frameWidth is ${after.video.frameWidth}`);
  if (!after.audio) problems.push('viewer has no inbound-rtp audio stats');
  else if (!(audioAfter > audioBefore)) problems.push(`viewer audio packetsReceived did not grow (${audioBefore} -> ${audioAfter})`);
  if (problems.length) return fail(problems.join('; '));

  // (5) the publisher leaves
  // Ending the session takes the token starting it took (the id alone does not).
  const anonymous = await withTimeout(pubPage.evaluate(([u]) => window.t.del(u), [sessionUrl]), 10_000, 'DELETE');
  log(`(5) DELETE ${sessionUrl} without the token -> ${anonymous.status}`);
  if (anonymous.status !== 401) return fail(`DELETE without the token: expected 401, got ${anonymous.status}: ${anonymous.body.trim()}`);
  const del = await withTimeout(pubPage.evaluate(([u, a]) => window.t.del(u, a), [sessionUrl, `Bearer ${token}`]), 10_000, 'DELETE');
  log(`(5) DELETE ${sessionUrl} -> ${del.status}`);
  if (del.status !== 200) return fail(`DELETE of the publisher session: expected 200, got ${del.status}: ${del.body.trim()}`);
  await pubPage.evaluate(() => window.t.close('main'));

  finished = true;
  clearTimeout(overall);
  console.log(`PASS: 401/401 without/wrong token, 201 publish, 409 second publisher, viewer ${after.video.codec} ${after.video.frameWidth}x${after.video.frameHeight} +${frames} frames in ${GROWTH_WINDOW_MS / 1000} s, audio +${audioAfter - audioBefore} packets, DELETE 401 without the token, 200 with it`);
  await cleanup();
  process.exit(0);
}

main().catch((e) => fail(`exception: ${e && e.stack ? e.stack : e}`));
