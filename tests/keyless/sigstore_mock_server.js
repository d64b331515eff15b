#!/usr/bin/env node
// Local, offline Fulcio + Rekor (v1) test services built on @sigstore/mock.
//
// Usage: node server.js [--fulcio-port 3100] [--rekor-port 3101] [--out trust-material.json] [--ttl 3600]
//   (env: FULCIO_PORT, REKOR_PORT, TRUST_OUT, SERVER_TTL; port 0 = pick a free port)
// Binds 127.0.0.1 only. Writes the CA cert, CT log key and Rekor key (plus the
// actual URLs) to --out once both listeners are up, then prints "READY <out>".
// Exits on SIGTERM/SIGINT, when its parent process dies, or after --ttl seconds.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const {
  initializeCA, initializeCTLog, fulcioHandler,
  initializeTLog, rekorHandler,
} = require('@sigstore/mock');

function arg(name, envName, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[envName] ?? dflt;
}
const HOST = '127.0.0.1';
const FULCIO_PORT = Number(arg('fulcio-port', 'FULCIO_PORT', 3100));
const REKOR_PORT = Number(arg('rekor-port', 'REKOR_PORT', 3101));
const OUT = arg('out', 'TRUST_OUT', 'trust-material.json');
const TTL = Number(arg('ttl', 'SERVER_TTL', 3600));

const servers = [];
function shutdown(code) {
  for (const s of servers) { try { s.close(); s.closeAllConnections?.(); } catch {} }
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('SIGHUP', () => shutdown(0));
// Stop when the parent dies (we get re-parented, ppid changes).
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) shutdown(0);
  try { process.kill(parentPid, 0); } catch { shutdown(0); }
}, 500).unref();
if (TTL > 0) setTimeout(() => shutdown(0), TTL * 1000).unref();

const pem = (label, der) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;

// --- request shims -----------------------------------------------------------
// sigstore-python sends `certificateSigningRequest` as base64(PEM) (like real
// Fulcio expects); hand the mock the plain PEM.
// It also sends the OIDC token as `Authorization: Bearer ...` rather than in
// the body's `credentials`, which is where the mock reads it from.
function fulcioShim(body, req) {
  const json = JSON.parse(body);
  const auth = req.headers.authorization || '';
  if (!json.credentials && auth.startsWith('Bearer ')) {
    json.credentials = { oidcIdentityToken: auth.slice(7) };
  }
  const csr = json.certificateSigningRequest;
  if (typeof csr === 'string' && !csr.includes('-----BEGIN')) {
    json.certificateSigningRequest = Buffer.from(csr, 'base64').toString('utf8');
  }
  return JSON.stringify(json);
}
// The mock logs the *proposed* entry verbatim. Real Rekor canonicalizes a
// dsse/0.0.1 proposal into {envelopeHash, payloadHash, signatures}, and
// sigstore-python's verifier checks exactly that form, so do it here.
function rekorShim(body) {
  const entry = JSON.parse(body);
  if (entry.kind === 'dsse' && entry.spec && entry.spec.proposedContent) {
    const { envelope, verifiers } = entry.spec.proposedContent;
    const env = JSON.parse(envelope);
    const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
    return JSON.stringify({
      apiVersion: entry.apiVersion || '0.0.1',
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: sha(Buffer.from(envelope, 'utf8')) },
        payloadHash: { algorithm: 'sha256', value: sha(Buffer.from(env.payload, 'base64')) },
        signatures: env.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
      },
    });
  }
  return body;
}

function serve(port, routes) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const path = req.url.split('?')[0];
        const route = routes[`${req.method} ${path}`];
        if (!route) {
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          return res.end(`no route ${req.method} ${path}\n`);
        }
        try {
          const { statusCode, response, contentType } = await route(Buffer.concat(chunks).toString('utf8'), req);
          res.writeHead(statusCode, { 'Content-Type': contentType || 'text/plain' });
          res.end(response);
          if (statusCode >= 400) console.error(`${req.method} ${path} -> ${statusCode}: ${response}`);
        } catch (e) {
          console.error(`${req.method} ${path} -> 500: ${e.stack || e}`);
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(String(e && e.message));
        }
      });
    });
    srv.on('error', reject);
    srv.listen(port, HOST, () => { servers.push(srv); resolve(srv.address().port); });
  });
}

async function main() {
  const gen = () => crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caKey = gen(), ctKey = gen(), tlogKey = gen();
  const startedAt = new Date();

  const ctlog = await initializeCTLog(ctKey);
  const ca = await initializeCA(caKey, ctlog);
  const fulcio = fulcioHandler(ca, { strict: true, subjectClaim: 'sub' });

  // Listen first on the Rekor port so we know its URL (the mock puts the
  // host:port into the checkpoint origin).
  let rekorFn = null;
  const rekorPort = await serve(REKOR_PORT, {
    'POST /api/v1/log/entries': (b) => rekorFn(rekorShim(b)),
  });
  const rekorURL = `http://${HOST}:${rekorPort}`;
  const tlog = await initializeTLog(rekorURL, tlogKey);
  rekorFn = rekorHandler(tlog, { strict: true }).fn;

  const fulcioPort = await serve(FULCIO_PORT, {
    'POST /api/v2/signingCert': (b, req) => fulcio.fn(fulcioShim(b, req)),
  });
  const fulcioURL = `http://${HOST}:${fulcioPort}`;

  const out = {
    started_at: startedAt.toISOString(),
    fulcio_url: fulcioURL,
    rekor_url: rekorURL,
    fulcio_root_cert_pem: pem('CERTIFICATE', ca.rootCertificate),
    ctlog_public_key_pem: pem('PUBLIC KEY', ctlog.publicKey),
    rekor_public_key_pem: pem('PUBLIC KEY', tlog.publicKey),
  };
  fs.writeFileSync(OUT + '.tmp', JSON.stringify(out, null, 2));
  fs.renameSync(OUT + '.tmp', OUT);
  console.log(`READY ${OUT} fulcio=${fulcioURL} rekor=${rekorURL}`);
}

main().catch((e) => { console.error(e); shutdown(1); });
