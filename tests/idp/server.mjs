// A real OpenID Connect provider (panva's certified `oidc-provider`) for scopegate's tests.
//
// Usage: node tests/idp/server.mjs            (or PORT=0 node tests/idp/server.mjs)
//
// Environment:
//   PORT        port to listen on, on 127.0.0.1. Defaults to 0 (pick a free port).
//               The issuer is http://127.0.0.1:<port> (no trailing slash).
//   KEY_FILE    a private JWKS JSON file ({"keys":[...]}) to sign with; the first key signs.
//               Defaults to none: a new RS256 key (random kid) is made at every start, so a
//               restart on the same port is a signing-key rotation.
//   ACCESS_TOKEN_TTL  lifetime in seconds of the API's tokens. Defaults to 600.
//   SHORT_TOKEN_TTL   lifetime in seconds of tokens for the "short" resource. Defaults to 1.
//   EXIT_ON_STDIN_EOF=1  exit when stdin closes: a test harness that pipes stdin and dies
//               (no chance to send SIGTERM) takes this server with it. Defaults to off.
//
// Prints exactly one line `READY <issuer>` on stdout once it accepts connections; all other
// output goes to stderr. SIGTERM and SIGINT stop it at once (all state is in memory).
//
// Clients (client_secret_basic at the token, introspection and revocation endpoints):
//   scopegate-test / scopegate-test-secret          grant client_credentials, all API scopes
//   scopegate-introspector / introspector-secret    may introspect any token
//   scopegate-introspector-post / introspector-secret   the same, with client_secret_post
//   scopegate-lead / scopegate-lead-secret          like scopegate-test; its tokens also carry
//                                   groups, tenant_id and realm_access.roles (CLIENT_CLAIMS)
//   scopegate-contractor / scopegate-contractor-secret   the same, with other values
//   scopegate-mtls / scopegate-mtls-secret          like scopegate-test; its tokens are
//                                   certificate-bound (RFC 8705 §3: cnf.x5t#S256)
//
// Tokens bound to the caller:
//   DPoP (RFC 9449): any client that sends a `DPoP` proof with its token request gets a
//   DPoP-bound token (cnf.jkt, token_type DPoP). Proofs: ES256, Ed25519/EdDSA.
//   Mutual TLS (RFC 8705): this server speaks plain HTTP on loopback, so the client
//   certificate comes as a TLS-terminating proxy forwards it: the URL-encoded PEM in the
//   `X-Client-Cert` header (nginx's $ssl_client_escaped_cert). Only scopegate-mtls's tokens
//   are bound to it; the certificate is not checked against a CA (certificateAuthorized is
//   only asked for tls_client_auth, which no client here uses).
//
// Resources (RFC 8707 `resource` parameter):
//   https://api.scopegate.test      the default: RS256 JWT access tokens (typ at+jwt, claims
//                                   iss aud sub client_id scope iat exp jti)
//   https://opaque.scopegate.test   opaque tokens, for introspection (RFC 7662) and
//                                   revocation (RFC 7009): oidc-provider refuses both for JWTs
//   https://short.scopegate.test    JWTs like the default one (same aud), SHORT_TOKEN_TTL long
//
// Scopes a resource does not list are silently dropped by oidc-provider, so every resource
// lists all of SCOPES.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const SCOPES = ['email', 'profile', 'orders:read', 'orders:write', 'inventory:read', 'admin'];
const API = 'https://api.scopegate.test';
const OPAQUE = 'https://opaque.scopegate.test';
const SHORT = 'https://short.scopegate.test';

// Claims besides the scopes, per client, in the shapes identity providers write them: an
// array of groups (Okta, Cognito), a tenant id string, Keycloak's nested realm roles.
const CLIENT_CLAIMS = {
  'scopegate-lead': {
    groups: ['support-leads', 'staff'],
    tenant_id: 'acme',
    realm_access: { roles: ['admin'] },
  },
  'scopegate-contractor': {
    groups: ['contractors'],
    tenant_id: 'globex',
    realm_access: { roles: ['Admin'] },
  },
};

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value < 0 || String(value) !== raw.trim()) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function signingKeys() {
  const file = process.env.KEY_FILE;
  if (file) {
    let jwks;
    try {
      jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`KEY_FILE ${file}: cannot read a JWKS JSON: ${err.message}`);
    }
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw new Error(`KEY_FILE ${file}: expected {"keys":[...]} with at least one private key`);
    }
    return jwks;
  }
  // A fresh key each start: without `jwks` oidc-provider would use its fixed development key.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    keys: [{ ...jwk, kid: crypto.randomBytes(12).toString('base64url'), use: 'sig', alg: 'RS256' }],
  };
}

const port = intFromEnv('PORT', 0);
const accessTokenTTL = intFromEnv('ACCESS_TOKEN_TTL', 600);
const shortTokenTTL = intFromEnv('SHORT_TOKEN_TTL', 1);
const jwks = signingKeys();

// Listen first so that PORT=0 yields the real port before the issuer is fixed.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const resourceServers = {
  [API]: { accessTokenFormat: 'jwt', accessTokenTTL },
  [OPAQUE]: { accessTokenFormat: 'opaque', accessTokenTTL },
  [SHORT]: { accessTokenFormat: 'jwt', accessTokenTTL: shortTokenTTL, audience: API },
};

const provider = new Provider(issuer, {
  jwks,
  scopes: ['openid', 'offline_access', ...SCOPES],
  clients: [
    {
      client_id: 'scopegate-test',
      client_secret: 'scopegate-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
    },
    ...Object.keys(CLIENT_CLAIMS).map((client_id) => ({
      client_id,
      client_secret: `${client_id}-secret`,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
    })),
    {
      client_id: 'scopegate-mtls',
      client_secret: 'scopegate-mtls-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      tls_client_certificate_bound_access_tokens: true,
      scope: SCOPES.join(' '),
    },
    {
      client_id: 'scopegate-introspector',
      client_secret: 'introspector-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'scopegate-introspector-post',
      client_secret: 'introspector-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  extraTokenClaims: async (_ctx, token) => CLIENT_CLAIMS[token.clientId],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any confidential (authenticated) client may introspect any token.
      allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none',
    },
    revocation: { enabled: true },
    dPoP: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const forwarded = ctx.get('x-client-cert');
        return forwarded ? decodeURIComponent(forwarded) : undefined;
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? API,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const info = resourceServers[resourceIndicator];
        if (!info) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        return {
          scope: SCOPES.join(' '),
          ...info,
          ...(info.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
  ttl: {
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
  },
});
provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));

server.on('request', provider.callback());

function stop(signal) {
  console.error(`idp: ${signal}, stopping`);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (process.env.EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin closed'));
  process.stdin.resume();
}

console.error(`idp: listening at ${issuer}, signing kid ${jwks.keys[0].kid}`);
process.stdout.write(`READY ${issuer}\n`);
