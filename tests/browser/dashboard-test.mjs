// The built-in dashboard (/dashboard) in headless Chromium, on a relay tree
// with viewers watching (run-dashboard-test.sh starts it).
//
// Usage: node dashboard-test.mjs <root-url> <relay-url> <metrics-token> <root-viewers> <relay-viewers> <artifacts-dir>
//
// On the root: without the token the page must say it needs one; with it,
// the numbers shown must be those the root's own GET /stats gives (viewers,
// relay children and their load), the bitrate must be what that many viewers
// receive, the loss and RTT charts must hold receiver reports, and the page
// must load nothing from anywhere but its node. On the relay: its upstream
// is drawn live. Screenshots of both pages go to the artifacts directory.
// Exit status 0 = PASS, 1 = FAIL.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const [rootUrl, relayUrl, token, rootViewersArg, relayViewersArg, artifacts] = process.argv.slice(2);
if (!artifacts) {
  console.error('usage: node dashboard-test.mjs <root-url> <relay-url> <metrics-token> <root-viewers> <relay-viewers> <artifacts-dir>');
  process.exit(2);
}
const rootViewers = Number(rootViewersArg), relayViewers = Number(relayViewersArg);
const log = (msg) => console.log(`[dashboard-test] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let context = null, userDataDir = null;
const consoleLines = [];

async function finish(code, reason) {
  if (code) {
    console.log(`FAIL: ${reason}`);
    console.log('---- page console messages ----');
    for (const l of consoleLines) console.log(l);
    console.log('---- end ----');
  } else {
    console.log(`PASS: ${reason}`);
  }
  if (context) await Promise.race([context.close(), sleep(5000)]).catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}
setTimeout(() => finish(1, 'total timeout of 120 s exceeded'), 120_000);

// Polls `probe` until it returns a truthy value or `ms` pass; the last value.
async function waitFor(what, ms, probe) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last && last.ok) return last;
    await sleep(250);
  }
  await finish(1, `${what} within ${ms / 1000} s; last seen: ${JSON.stringify(last)}`);
}

async function stats(base) {
  const r = await fetch(new URL('stats', base), { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET /stats: ${r.status}`);
  return r.json();
}

async function openDashboard(url) {
  const page = await context.newPage();
  const origin = new URL(url).origin;
  page.foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) page.foreign.push(r.url()); });
  page.on('console', (m) => consoleLines.push(`[${url}] [console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[${url}] [pageerror] ${e.message}`));
  const resp = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  if (!resp || resp.status() !== 200) await finish(1, `GET ${url}: ${resp ? resp.status() : 'no response'}`);
  const csp = resp.headers()['content-security-policy'] || '';
  if (!csp.includes("default-src 'none'") || !csp.includes("connect-src 'self'"))
    await finish(1, `${url} came without a policy that keeps it to its node: '${csp}'`);
  return page;
}

const shownOn = (page) => page.evaluate(() => ({
  error: window.dashboard.error,
  polls: window.dashboard.polls,
  samples: window.dashboard.samples.length,
  shown: window.dashboard.shown,
  tiles: Object.fromEntries([...document.querySelectorAll('.tile')].map((t) => [t.dataset.metric, t.querySelector('.v').textContent])),
  tree: [...document.querySelectorAll('#tree .tree-node')].map((g) => ({
    kind: g.dataset.kind, url: g.dataset.url || null, state: g.dataset.state || null, text: g.textContent })),
  layers: [...document.querySelectorAll('#layers rect')].map((r) => ({ kind: r.dataset.kind, subscribers: Number(r.dataset.subscribers) })),
  lossBars: [...document.querySelectorAll('#hist-loss rect')].length,
  rttBars: [...document.querySelectorAll('#hist-rtt rect')].length,
  chartPaths: document.querySelectorAll('#chart-viewers path, #chart-bitrate path').length,
}));

async function main() {
  userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-test-profile-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });

  // (1) Without the token: the page loads, and says what it needs.
  const bare = await openDashboard(new URL('dashboard', rootUrl).href);
  const refused = await waitFor('the page without the token to show the 401', 10_000, async () => {
    const s = await shownOn(bare);
    return { ok: /^401/.test(s.error || '') && (await bare.textContent('#state')).startsWith('401'), error: s.error };
  });
  log(`without the token: "${refused.error}"`);
  await bare.close();
  // Its 401 is the one error the browser may log.
  consoleLines.length = 0;

  // (2) With it, on the root.
  const page = await openDashboard(new URL(`dashboard#token=${token}`, rootUrl).href);
  // A stranger posting what is not an offer (415) five times a second: the
  // refusals tile must show it.
  const stranger = setInterval(() => fetch(new URL('whep', rootUrl), {
    method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'not an offer' }).catch(() => {}), 200);
  const seen = await waitFor(`the root's dashboard to show ${rootViewers} viewers and a relay child with ${relayViewers}`, 45_000, async () => {
    const s = await shownOn(page);
    const child = (s.shown.tree?.children || [])[0];
    return {
      ok: s.shown.viewers === rootViewers && child && child.up && child.viewers === relayViewers &&
          s.shown.bitrate > 0 && s.shown.reports?.loss > 0 && s.samples >= 10 && s.shown.refusals > 0 &&
          // The load viewers echo our sender reports (LSR/DLSR): round trips from them all.
          s.shown.reports?.rtt >= rootViewers,
      ...s,
    };
  });
  clearInterval(stranger);
  const truth = await stats(rootUrl);
  log(`shown: ${JSON.stringify(seen.tiles)}`);
  log(`tree: ${JSON.stringify(seen.tree)}`);
  const problems = [];
  if (seen.tiles.viewers !== String(truth.viewers)) problems.push(`viewers tile "${seen.tiles.viewers}", /stats says ${truth.viewers}`);
  if (seen.tiles.children !== String(truth.children) || truth.children !== 1)
    problems.push(`relay children tile "${seen.tiles.children}", /stats says ${truth.children} (expected 1)`);
  if (seen.tiles.shards !== String(truth.shards.length)) problems.push(`sender threads "${seen.tiles.shards}", /stats has ${truth.shards.length}`);
  if (seen.tiles.keyframes_refused !== String(truth.streams.video.keyframe_requests_refused))
    problems.push(`keyframe refusals "${seen.tiles.keyframes_refused}", /stats says ${truth.streams.video.keyframe_requests_refused}`);
  if (!(truth.http_responses['415'] > 0)) problems.push(`/stats counts no 415: ${JSON.stringify(truth.http_responses)}`);
  log(`refusals shown: ${seen.tiles.refusals} /s; /stats http_responses ${JSON.stringify(truth.http_responses)}`);
  const child = seen.tree.find((n) => n.kind === 'child');
  if (!child || child.url !== truth.relay_children[0].url || !child.text.includes(`${relayViewers} watching`))
    problems.push(`the tree's child box ${JSON.stringify(child)} is not /stats's ${JSON.stringify(truth.relay_children)}`);
  const self = seen.tree.find((n) => n.kind === 'self');
  if (!self || !self.text.includes(`${rootViewers} watching`)) problems.push(`the tree's node box ${JSON.stringify(self)}`);
  // Each viewer gets the whole stream (800 kbit/s of video by default, and
  // Opus); relays count too. The sum must be that many streams' worth.
  const perStream = seen.shown.bitrate / (rootViewers + 1);
  log(`bitrate out ${seen.shown.bitrate.toFixed(2)} Mbit/s: ${(perStream * 1000).toFixed(0)} kbit/s per session`);
  if (!(perStream > 0.2 && perStream < 3)) problems.push(`${seen.shown.bitrate} Mbit/s out is not ${rootViewers + 1} streams' worth`);
  const video = seen.layers.find((l) => l.kind === 'video');
  if (!video || video.subscribers !== truth.streams.video.subscribers) problems.push(`layer mix ${JSON.stringify(seen.layers)}`);
  if (!(seen.lossBars > 3 && seen.rttBars > 3 && seen.chartPaths >= 3))
    problems.push(`charts not drawn: ${seen.lossBars} loss bars, ${seen.rttBars} RTT bars, ${seen.chartPaths} lines`);
  log(`receiver reports in the window: ${JSON.stringify(seen.shown.reports)}; ${seen.samples} samples`);
  await page.screenshot({ path: join(artifacts, 'dashboard-screenshot.png'), fullPage: true });
  log(`screenshot: ${join(artifacts, 'dashboard-screenshot.png')}`);

  // (3) The relay's dashboard draws its upstream, live.
  const relay = await openDashboard(new URL(`dashboard#token=${token}`, relayUrl).href);
  const relaySeen = await waitFor(`the relay's dashboard to show its upstream live and ${relayViewers} viewers`, 20_000, async () => {
    const s = await shownOn(relay);
    return { ok: s.shown.viewers === relayViewers && s.tree.some((n) => n.kind === 'upstream' && n.state === 'live'), ...s };
  });
  log(`relay tree: ${JSON.stringify(relaySeen.tree)}`);
  await relay.screenshot({ path: join(artifacts, 'dashboard-relay-screenshot.png'), fullPage: true });

  for (const p of [page, relay])
    if (p.foreign.length) problems.push(`the page requested other origins: ${p.foreign.join(', ')}`);
  const errors = consoleLines.filter((l) => /console\.error|pageerror/.test(l));
  if (errors.length) problems.push(`console errors: ${errors.join(' | ')}`);
  if (problems.length) return finish(1, problems.join('; '));
  return finish(0, `root dashboard shows ${rootViewers} viewers, 1 relay child with ${relayViewers}, ` +
                   `${seen.shown.bitrate.toFixed(1)} Mbit/s out, ${seen.shown.reports.rtt} RTTs in its window; relay shows its upstream live`);
}

mkdirSync(artifacts, { recursive: true });
main().catch((e) => finish(1, `exception: ${e && e.stack ? e.stack : e}`));
