// A real external OpenID provider for the tests: npm's certified `oidc-provider`, configured as
// a site would configure Keycloak for lm-cli: a public client "lm-cli" allowed the device flow
// and refresh tokens, JWT access tokens for the License Manager API (audience) carrying the
// license-manager permissions as scopes. Development login pages: any name, any password.
//
// node provider.mjs PORT AUDIENCE   (OIDC_PROVIDER_DIR: where npm installed oidc-provider)
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, audience] = process.argv.slice(2);
const moduleDir = join(process.env.OIDC_PROVIDER_DIR, 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(moduleDir).href);

const PERMISSIONS = ['license-manager:admin', 'license-manager:configuration:read'];
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'lm-cli',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }],
  scopes: ['openid', 'offline_access', ...PERMISSIONS],
  claims: { openid: ['sub'] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: PERMISSIONS.join(' '),
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
      }),
    },
  },
  // Refresh tokens for the public CLI client whenever it may use the grant.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  cookies: { keys: ['only-for-tests'] },
  ttl: { DeviceCode: 600, AccessToken: 600, RefreshToken: 86400, Grant: 86400, Interaction: 600, Session: 86400 },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
