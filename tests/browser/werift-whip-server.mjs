// A small WHIP endpoint built on werift (a WebRTC stack in TypeScript, from
// npm): another implementation than ours at every layer (ICE, DTLS, SRTP,
// SDP), to prove that a node's push-url works with a WHIP server that is
// not our own.
//
// Usage: node werift-whip-server.mjs <port> <token>
//
// POST /whip (Bearer <token>, application/sdp) -> 201 with werift's answer
// and Location /whip/<n>; DELETE /whip/<n> -> 200. GET /stats -> JSON of
// what werift decrypted: RTP packets per kind, H.264 keyframes (IDR NAL
// units), distinct SSRCs, the sessions opened and deleted, the requests
// refused for their token. Listens on
// 127.0.0.1 only, and its ICE offers 127.0.0.1 only.
import http from 'node:http';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';

const [portArg, token] = process.argv.slice(2);
if (!portArg || !token) {
  console.error('usage: node werift-whip-server.mjs <port> <token>');
  process.exit(2);
}
const log = (msg) => console.log(`[werift-whip] ${msg}`);
const stats = { sessions: 0, refused: 0, deleted: 0, connected: 0, video: 0, audio: 0, keyframes: 0, ssrcs: [], states: [] };
const sessions = new Map();

// H.264 as RFC 6184 packs it: is there an IDR slice in this RTP payload?
function hasIdr(payload) {
  if (!payload.length) return false;
  const type = payload[0] & 0x1f;
  if (type === 5) return true;
  if (type === 24) {  // STAP-A: 16-bit sizes, then NAL units
    for (let i = 1; i + 2 < payload.length;) {
      const size = payload.readUInt16BE(i);
      if ((payload[i + 2] & 0x1f) === 5) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === 28 && payload.length > 1) return (payload[1] & 0x80) !== 0 && (payload[1] & 0x1f) === 5;  // FU-A start
  return false;
}

async function answer(offer) {
  const pc = new RTCPeerConnection({
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceFilterCandidatePair: (pair) => pair.localCandidate.host === '127.0.0.1' && pair.remoteCandidate.host === '127.0.0.1',
    codecs: {
      video: [new RTCRtpCodecParameters({
        mimeType: 'video/H264', clockRate: 90000,
        rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
      })],
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
    },
  });
  pc.connectionStateChange.subscribe((state) => {
    stats.states.push(state);
    if (state === 'connected') stats.connected++;
    log(`connection ${state}`);
  });
  pc.onTrack.subscribe((track) => {
    log(`track ${track.kind}`);
    track.onReceiveRtp.subscribe((rtp) => {
      const ssrc = rtp.header.ssrc;
      if (!stats.ssrcs.includes(ssrc)) stats.ssrcs.push(ssrc);
      if (track.kind === 'video') {
        stats.video++;
        if (hasIdr(rtp.payload)) stats.keyframes++;
      } else {
        stats.audio++;
      }
    });
  });
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  return pc;
}

const server = http.createServer((req, res) => {
  const reply = (status, headers = {}, body = '') => { res.writeHead(status, headers); res.end(body); };
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/stats') return reply(200, { 'Content-Type': 'application/json' }, JSON.stringify(stats));
  if (req.headers.authorization !== `Bearer ${token}`) {
    stats.refused++;
    return reply(401, { 'WWW-Authenticate': 'Bearer' });
  }
  if (req.method === 'POST' && url.pathname === '/whip') {
    if (!(req.headers['content-type'] || '').startsWith('application/sdp')) return reply(415);
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', async () => {
      try {
        const pc = await answer(body);
        const id = String(++stats.sessions);
        sessions.set(id, pc);
        reply(201, { 'Content-Type': 'application/sdp', Location: `/whip/${id}` }, pc.localDescription.sdp);
        log(`session ${id} answered`);
        if (process.env.WERIFT_SDP) log(`offer:\n${body}\nanswer:\n${pc.localDescription.sdp}`);
      } catch (e) {
        log(`offer refused: ${e && e.stack ? e.stack : e}`);
        reply(400, { 'Content-Type': 'text/plain' }, String(e));
      }
    });
    return;
  }
  const m = url.pathname.match(/^\/whip\/(\d+)$/);
  if (req.method === 'DELETE' && m && sessions.has(m[1])) {
    sessions.get(m[1]).close();
    sessions.delete(m[1]);
    stats.deleted++;
    log(`session ${m[1]} deleted`);
    return reply(200);
  }
  return reply(404);
});
server.listen(Number(portArg), '127.0.0.1', () => log(`listening on http://127.0.0.1:${portArg}/whip`));
