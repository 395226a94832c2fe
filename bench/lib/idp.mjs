/**
 * The ID-JAG row's enterprise IdP, in the bench process: an ES256 key whose JWK Set an https server on a loopback
 * port publishes (a throwaway self-signed certificate made with openssl, which Gatehouse trusts through the IdP's
 * `trustedCaFile`), and a synchronous signer of ID-JAGs (`typ: oauth-id-jag+jwt`, a fresh jti each), so a run's
 * assertions are signed before its measured window. Gatehouse fetches the JWK Set once and caches it.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';

export async function startIdp(workDir) {
  const key = join(workDir, 'idp-key.pem');
  const cert = join(workDir, 'idp-cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomBytes(8).toString('base64url');
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] });
  let fetches = 0;
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    if (req.url !== '/idp/jwks.json') return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://localhost:${server.address().port}`;
  const issuer = `${origin}/idp`;
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid, typ: 'oauth-id-jag+jwt' })).toString('base64url');
  return {
    issuer,
    jwksUri: `${origin}/idp/jwks.json`,
    caFile: cert,
    get jwksFetches() {
      return fetches;
    },
    /** An ID-JAG with `claims`, iss, iat, exp (5 minutes) and a fresh jti. */
    sign(claims) {
      const iat = Math.floor(Date.now() / 1000);
      const payload = { iss: issuer, iat, exp: iat + 300, jti: randomBytes(16).toString('base64url'), ...claims };
      const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
      const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${sig.toString('base64url')}`;
    },
    close: () => server.close(),
  };
}
