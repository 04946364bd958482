// panva's openid-client, unmodified defaults: discovery() (the OpenID Connect well-known
// address first), then the client_credentials grant with its default client authentication
// (client_secret_post) and with client_secret_basic. Prints what it got as one JSON line.
// Usage: ISSUER=... CLIENT_ID=... CLIENT_SECRET=... node client_credentials.mjs
import * as client from 'openid-client';

const { ISSUER, CLIENT_ID, CLIENT_SECRET } = process.env;
// Only because the test server speaks plain HTTP on 127.0.0.1: this option permits http://
// and changes nothing else in discovery or the grant.
const options = { execute: [client.allowInsecureRequests] };

const config = await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined, options);
const byPost = await client.clientCredentialsGrant(config, { scope: 'reports:read' });

const basic = await client.discovery(
  new URL(ISSUER), CLIENT_ID, undefined, client.ClientSecretBasic(CLIENT_SECRET), options,
);
const byBasic = await client.clientCredentialsGrant(basic, { scope: 'reports:read' });

process.stdout.write(JSON.stringify({
  metadata: config.serverMetadata(),
  tokens: [byPost, byBasic].map((t) => ({
    access_token: t.access_token,
    token_type: t.token_type,
    expires_in: t.expiresIn(),
    scope: t.scope,
  })),
}) + '\n');
