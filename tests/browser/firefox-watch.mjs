// One headless Firefox viewer of a node's page (Debian's firefox-esr, driven
// over WebDriver BiDi by puppeteer-core: Playwright only drives its own
// patched Firefox builds) that reports what it decoded over a window. The
// Firefox counterpart of watch-stats.mjs; used by run-firefox-test.sh.
//
// Usage: node firefox-watch.mjs <page-url> <label> <window-seconds> <out.json>
//
// Opens the page, waits for its <video> to play (PLAY_TIMEOUT seconds, default
// 60), lets it settle (SETTLE seconds, default 2), then samples the page's
// RTCPeerConnection (window.whep.pc, which the page exposes for tests) once a
// second for the window, and writes to out.json: played (false if the video never played: a result, not a
// failure), framesDecoded and fps over the window, the video inbound-rtp's
// codec mimeType, frameWidth and frameHeight at the end, audio
// packetsReceived, the page's visible status text at the end (and each one it
// showed), the video codecs Firefox offers and can receive, and the browser's
// version. Exit status 0 when it wrote them, 1 with an "error:" line when the
// harness itself failed (no browser, page not loaded, browser hung).
//
// The profile is made fresh in <dir of out.json>/firefox-<label>-profile and
// kept with Firefox's own output (firefox-<label>.log) for a look after a
// failure. FIREFOX_PATH overrides /usr/bin/firefox-esr.
import puppeteer from 'puppeteer-core';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const FIREFOX = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';
const [pageUrl, label, windowArg, outPath] = process.argv.slice(2);
if (!pageUrl || !label || !windowArg || !outPath || !(Number(windowArg) > 0)) {
  console.error('usage: node firefox-watch.mjs <page-url> <label> <window-seconds> <out.json>');
  process.exit(2);
}
const windowMs = Number(windowArg) * 1000;
const playTimeoutMs = Number(process.env.PLAY_TIMEOUT || 60) * 1000;
const settleMs = Number(process.env.SETTLE ?? 2) * 1000;
const log = (msg) => console.log(`[firefox ${label}] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const artifacts = dirname(resolve(outPath));
const profileDir = join(artifacts, `firefox-${label}-profile`);
const browserLog = join(artifacts, `firefox-${label}.log`);

// Every call into the browser gets a deadline: a hung content process must
// fail the run with a message, not stall it until meson's timeout.
const within = (ms, what, promise) => {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); }),
  ]);
};

// And the whole run gets one too, past which the browser is killed.
let browser = null;
const overall = setTimeout(() => {
  log(`error: no result within ${(windowMs + playTimeoutMs + settleMs) / 1000 + 90} s; killing Firefox`);
  browser?.process()?.kill('SIGKILL');
  process.exit(1);
}, windowMs + playTimeoutMs + settleMs + 90_000);

// Firefox makes network connections of its own at start (updates,
// telemetry, Normandy experiments, captive portal and connectivity probes,
// Safe Browsing lists, push, remote settings): these turn them off, so that
// the only traffic it sends is the page's. puppeteer's own defaults (which
// these extend) point the rest at dummy.test, which never resolves here.
const prefs = {
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.update.checkInstallTime': false,
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.shield.optoutstudies.enabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.server': '',
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'browser.ping-centre.telemetry': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.safebrowsing.passwords.enabled': false,
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'dom.push.connection.enabled': false,
  'extensions.blocklist.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'browser.region.update.enabled': false,
  'browser.region.network.url': '',
  'browser.topsites.contile.enabled': false,
  'browser.newtabpage.activity-stream.feeds.section.topstories': false,
  'browser.newtabpage.activity-stream.feeds.snippets': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.trr.mode': 5,
  'media.gmp-manager.updateEnabled': false,
  // Remote Settings (blocklists, Nimbus experiments, messaging) syncs from
  // Mozilla's server at start; release builds ignore this override unless
  // MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (set below). This is the value Mozilla's
  // own test profiles use: nothing to resolve or connect to.
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  // Host candidates are what a viewer on the node's own network connects
  // with (no STUN here); they are on by default, set so that a changed
  // default shows up here and not as "ICE gathers nothing".
  'media.peerconnection.ice.no_host': false,
  // The page's <video> is muted and autoplays; 0 allows all autoplay, so a
  // changed autoplay policy cannot pass for a decoding problem.
  'media.autoplay.default': 0,
  // No permission prompt can stall a headless browser.
  'media.navigator.permission.disabled': true,
};

// What the page's peer connection has received: the video inbound-rtp (with
// its codec's mimeType), the audio packets, the <video>'s state and the
// status line. pc is whatever window.whep.pc is now (the page replaces it on
// each reconnect).
const sample = (page) => within(10_000, 'reading the page', page.evaluate(async () => {
  const el = document.getElementById('video');
  const status = document.getElementById('status');
  const out = {
    status: status ? status.innerText.trim() : null,
    state: window.whep ? window.whep.state : null,
    paused: el ? el.paused : null, currentTime: el ? el.currentTime : 0, readyState: el ? el.readyState : 0,
    videoWidth: el ? el.videoWidth : 0, videoHeight: el ? el.videoHeight : 0,
    pc: false, video: null, audioPackets: 0,
  };
  const pc = window.whep && window.whep.pc;
  if (!pc) return out;
  out.pc = true;
  out.connectionState = pc.connectionState;
  let report;
  try { report = await pc.getStats(); } catch (e) { return out; }
  for (const s of report.values()) {
    if (s.type !== 'inbound-rtp') continue;
    const kind = s.kind || s.mediaType;
    if (kind === 'audio') out.audioPackets = s.packetsReceived ?? 0;
    else if (kind === 'video') {
      const codec = s.codecId ? report.get(s.codecId) : null;
      out.video = { frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0, lost: s.packetsLost ?? 0,
                    width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, mimeType: codec ? codec.mimeType : null };
    }
  }
  // No codec stats (or no codecId on the inbound-rtp): the answer's first
  // video payload type is the one the node sends.
  if (out.video && !out.video.mimeType && pc.remoteDescription) {
    const sdp = pc.remoteDescription.sdp;
    const m = /^m=video \d+ \S+ (\d+)/m.exec(sdp);
    const rtpmap = m && new RegExp(`^a=rtpmap:${m[1]} ([^/\\s]+)`, 'm').exec(sdp);
    if (rtpmap) out.video.mimeType = `video/${rtpmap[1]}`, out.video.mimeTypeFrom = 'sdp';
  }
  return out;
}));

// The video codecs this Firefox can receive and those its offer lists: where
// a codec the node sends is missing (H.264 without OpenH264), it shows here.
const codecs = (page) => within(10_000, 'reading codecs', page.evaluate(() => {
  const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('video');
  const receivable = caps ? [...new Set(caps.codecs.map((c) => c.mimeType))] : null;
  const pc = window.whep && window.whep.pc;
  const sdp = pc && pc.localDescription ? pc.localDescription.sdp : '';
  const video = sdp.split(/^m=/m).find((s) => s.startsWith('video')) || '';
  const offered = [...new Set([...video.matchAll(/^a=rtpmap:\d+ ([^/\s]+)/gm)].map((m) => `video/${m[1]}`))];
  return { receivable, offered };
}));

let code = 1;
let logStream = null;
let page = null;
try {
  rmSync(profileDir, { recursive: true, force: true });
  mkdirSync(profileDir, { recursive: true });
  browser = await puppeteer.launch({
    browser: 'firefox', executablePath: FIREFOX, headless: true, userDataDir: profileDir,
    extraPrefsFirefox: prefs, timeout: 30_000, protocolTimeout: 30_000,
    // No X server: headless Firefox must not look for one.
    env: { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '', MOZ_REMOTE_SETTINGS_DEVTOOLS: '1' },
  });
  logStream = createWriteStream(browserLog);
  browser.process()?.stdout?.pipe(logStream, { end: false });
  browser.process()?.stderr?.pipe(logStream, { end: false });
  const version = await within(10_000, 'browser version', browser.version());
  log(`${version} (${FIREFOX}), profile ${profileDir}`);

  page = await within(20_000, 'new page', browser.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warn') log(`page ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: 20_000 });

  // Playing: the element is not paused, has a picture and its clock moves.
  const statuses = [];
  const noteStatus = (s) => { if (s.status && s.status !== statuses[statuses.length - 1]) statuses.push(s.status); };
  const playDeadline = Date.now() + playTimeoutMs;
  let now = await sample(page);
  let firstTime = null;
  let played = false;
  while (Date.now() < playDeadline) {
    noteStatus(now);
    if (!now.paused && now.readyState >= 2 && now.videoWidth > 0) {
      if (firstTime === null) firstTime = now.currentTime;
      else if (now.currentTime > firstTime) { played = true; break; }
    }
    await sleep(250);
    now = await sample(page);
  }
  const playedAfter = (playTimeoutMs - (playDeadline - Date.now())) / 1000;
  log(played ? `playing after ${playedAfter.toFixed(1)} s (${now.status})`
             : `the video did not play within ${playTimeoutMs / 1000} s: status "${now.status}"`);

  const result = { label, url: pageUrl, browser: version, played };
  if (played) {
    // The jitter buffer releases what it held at the start in a burst (some
    // 45 frames in the first second at 30 fps): the window starts after it.
    const settleUntil = Date.now() + settleMs;
    while (Date.now() < settleUntil) {
      await sleep(Math.min(250, settleUntil - Date.now()));
      noteStatus(now = await sample(page));
    }
    // framesDecoded each second: a count that falls is a new peer connection
    // (the page reconnected), whose frames are counted from zero.
    const started = Date.now();
    const first = now;
    let last = now;
    let frames = 0, reconnects = 0;
    const samples = [];
    while (Date.now() - started < windowMs) {
      await sleep(Math.min(1000, windowMs - (Date.now() - started)));
      const s = await sample(page);
      noteStatus(s);
      const f = s.video ? s.video.frames : 0, lf = last.video ? last.video.frames : 0;
      if (f < lf) { reconnects++; frames += f; } else frames += f - lf;
      samples.push([Math.round((Date.now() - started) / 100) / 10, f, s.video ? s.video.width : 0]);
      last = s;
    }
    const seconds = (Date.now() - started) / 1000;
    Object.assign(result, {
      seconds, framesDecoded: frames, fps: frames / seconds,
      mimeType: last.video ? last.video.mimeType : null,
      mimeTypeFrom: last.video ? (last.video.mimeTypeFrom || 'stats') : null,
      frameWidth: last.video ? last.video.width : 0, frameHeight: last.video ? last.video.height : 0,
      audioPacketsReceived: last.audioPackets, audioPacketsInWindow: last.audioPackets - first.audioPackets,
      videoPacketsLost: last.video ? last.video.lost : 0, reconnects, samples,
      playedAfter,
    });
    now = last;
  } else {
    Object.assign(result, {
      framesDecoded: now.video ? now.video.frames : 0, fps: 0,
      mimeType: now.video ? now.video.mimeType : null,
      frameWidth: now.video ? now.video.width : 0, frameHeight: now.video ? now.video.height : 0,
      audioPacketsReceived: now.audioPackets, connectionState: now.connectionState ?? null,
    });
  }
  result.status = now.status;
  result.statuses = statuses;
  result.codecs = await codecs(page);
  log(JSON.stringify(result));
  writeFileSync(outPath, JSON.stringify(result, null, 1));
  code = 0;
} catch (e) {
  log(`error: ${String(e.message).split('\n')[0]}`);
} finally {
  // Leaving the page first ends its session (its pagehide sends the WHEP
  // DELETE), as a viewer closing a tab does, rather than leaving the node to
  // time the viewer out. Closing can hang on a wedged browser: it gets 10 s,
  // then SIGKILL.
  if (page) {
    await page.goto('about:blank', { timeout: 5_000 }).catch((e) => log(`leaving the page: ${e.message}`));
  }
  if (browser) {
    const proc = browser.process();
    await within(10_000, 'closing Firefox', browser.close()).catch((e) => {
      log(`${e.message}; killing it`);
      proc?.kill('SIGKILL');
    });
  }
  logStream?.end();
  clearTimeout(overall);
}
process.exit(code);
