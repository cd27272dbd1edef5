#!/usr/bin/env node
/*
 * Independent-peer COSE verifier built on cose-js 0.9.0.
 *
 * stdin : ONE JSON object
 *   {"kind": "sign1"|"mac0"|"encrypt0",
 *    "message_hex": "...",
 *    "key": {"x": hex, "y": hex}   (sign1, P-256 public key)
 *         | {"k": hex}             (mac0 / encrypt0),
 *    "external_aad_hex": ""}       (optional)
 * stdout: ONE JSON line
 *   {"ok": true, "payload_hex": "..."}  verified / decrypted
 *   {"ok": false, "error": "..."}       rejected by the peer
 * exit  : 0 for both of the above; 2 for harness bugs (bad request JSON,
 *         missing fields, cose-js not installed, ...), message on stderr.
 *
 * Before handing the message to cose-js we check the outer structure
 * ourselves, because cose-js is lax there: it ignores trailing bytes
 * (decodeFirst), and for an untagged or wrongly tagged message it guesses
 * the type (COSE_Sign / COSE_Encrypt by default), so a tag 98 message would
 * be verified as COSE_Sign when we asked for Sign1.
 */
'use strict';

const path = require('path');

const KINDS = {
  sign1: { tag: 18, arrayLength: 4 },
  mac0: { tag: 17, arrayLength: 4 },
  encrypt0: { tag: 16, arrayLength: 3 }
};

class HarnessError extends Error {}

function loadDeps () {
  let cose;
  let cbor;
  try {
    cose = require('cose-js');
    // Use the exact cbor instance cose-js itself resolves, so Tagged matches.
    const coseDir = path.dirname(require.resolve('cose-js/package.json'));
    cbor = require(require.resolve('cbor', { paths: [coseDir] }));
  } catch (err) {
    throw new HarnessError('cannot load cose-js (run npm ci in ' + __dirname + '): ' + err.message);
  }
  return { cose, cbor };
}

function readStdin () {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function hexField (obj, name, { optional = false, length = null } = {}) {
  const value = obj[name];
  if (value === undefined || value === null) {
    if (optional) return Buffer.alloc(0);
    throw new HarnessError('missing field ' + JSON.stringify(name));
  }
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new HarnessError('field ' + JSON.stringify(name) + ' is not an even-length hex string');
  }
  const buf = Buffer.from(value, 'hex');
  if (length !== null && buf.length !== length) {
    throw new HarnessError('field ' + JSON.stringify(name) + ' must be ' + length + ' bytes, got ' + buf.length);
  }
  return buf;
}

function parseRequest (text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (err) {
    throw new HarnessError('stdin is not JSON: ' + err.message);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    throw new HarnessError('request must be a JSON object');
  }
  if (!Object.prototype.hasOwnProperty.call(KINDS, req.kind)) {
    throw new HarnessError('unknown kind ' + JSON.stringify(req.kind));
  }
  if (req.key === null || typeof req.key !== 'object' || Array.isArray(req.key)) {
    throw new HarnessError('key must be a JSON object');
  }
  const message = hexField(req, 'message_hex');
  const externalAAD = hexField(req, 'external_aad_hex', { optional: true });
  let key;
  if (req.kind === 'sign1') {
    key = { x: hexField(req.key, 'x', { length: 32 }), y: hexField(req.key, 'y', { length: 32 }) };
  } else {
    key = { k: hexField(req.key, 'k') };
  }
  return { kind: req.kind, message, externalAAD, key };
}

// Returns null when the outer structure is acceptable, else a rejection reason.
function checkStructure (cbor, kind, message) {
  let items;
  try {
    items = cbor.decodeAllSync(message);
  } catch (err) {
    return 'malformed CBOR: ' + err.message;
  }
  if (items.length !== 1) {
    return 'expected exactly one CBOR data item, got ' + items.length;
  }
  let obj = items[0];
  const spec = KINDS[kind];
  if (obj instanceof cbor.Tagged) {
    if (obj.tag !== spec.tag) {
      return 'unexpected CBOR tag ' + obj.tag + ' for ' + kind + ' (want ' + spec.tag + ' or untagged)';
    }
    obj = obj.value;
  }
  if (!Array.isArray(obj) || obj.length !== spec.arrayLength) {
    return kind + ' must be a CBOR array of length ' + spec.arrayLength;
  }
  if (!Buffer.isBuffer(obj[0])) {
    return 'protected header must be a byte string';
  }
  if (!(obj[1] instanceof Map) && (obj[1] === null || typeof obj[1] !== 'object' || Array.isArray(obj[1]))) {
    return 'unprotected header must be a map';
  }
  if (!Buffer.isBuffer(obj[2])) {
    // nil payload (detached content) is not supported by cose-js.
    return (kind === 'encrypt0' ? 'ciphertext' : 'payload') + ' must be a byte string (detached content unsupported)';
  }
  if (kind !== 'encrypt0' && !Buffer.isBuffer(obj[3])) {
    return (kind === 'sign1' ? 'signature' : 'tag') + ' must be a byte string';
  }
  return null;
}

async function verifyWithCoseJs (cose, req) {
  const defaultType = KINDS[req.kind].tag;
  if (req.kind === 'sign1') {
    const verifier = { key: { x: req.key.x, y: req.key.y }, externalAAD: req.externalAAD };
    return cose.sign.verify(req.message, verifier, { defaultType });
  }
  if (req.kind === 'mac0') {
    return cose.mac.read(req.message, req.key.k, req.externalAAD, { defaultType });
  }
  return cose.encrypt.read(req.message, req.key.k, { defaultType, externalAAD: req.externalAAD });
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main () {
  const { cose, cbor } = loadDeps();
  const req = parseRequest(await readStdin());
  const problem = checkStructure(cbor, req.kind, req.message);
  if (problem !== null) {
    emit({ ok: false, error: problem });
    return;
  }
  let payload;
  try {
    payload = await verifyWithCoseJs(cose, req);
  } catch (err) {
    emit({ ok: false, error: String((err && err.message) || err) });
    return;
  }
  if (!Buffer.isBuffer(payload)) {
    throw new HarnessError('cose-js returned a non-buffer payload: ' + typeof payload);
  }
  emit({ ok: true, payload_hex: payload.toString('hex') });
}

main().then(
  () => { process.exitCode = 0; },
  (err) => {
    process.stderr.write('verify.js harness error: ' + ((err && err.stack) || err) + '\n');
    process.exitCode = 2;
  }
);
