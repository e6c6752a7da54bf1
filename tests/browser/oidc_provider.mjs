// A real OpenID provider for the sign-in tests: `oidc-provider` (a certified implementation of
// OpenID Connect), with its development sign-in pages (any password; the login names the
// person). Started by crates/wavegate/tests/it/oidc.rs:
//
//   node oidc_provider.mjs   with PORT (0: any), REDIRECT_URI (wavegate's /auth/callback),
//                            CLIENT_SECRET, KID (the signing key's id: a new one per start,
//                            so restarting on the same port rotates the key),
//                            ID_TOKEN_AUDIENCE (optional: another client registered here;
//                            wavegate's code is then answered with an ID token the provider
//                            issued to that client — right key, issuer, person and nonce, wrong
//                            audience: a token substitution)
//
// Prints `issuer <url>` once it listens. People: alice (group release-managers), bob (cab),
// erin (engineers), ed (editors), carol (no group), olga (too many groups: left out, as Entra ID's
// "overage" does).
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PORT || 0);
const otherAudience = process.env.ID_TOKEN_AUDIENCE;
const groups = {
  alice: ["release-managers"],
  bob: ["cab"],
  erin: ["engineers"],
  ed: ["editors"],
  carol: [],
};

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: process.env.KID || "k1", use: "sig", alg: "RS256" };

function configure(issuer) {
  return new Provider(issuer, {
    clients: [{
      client_id: "wavegate",
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }, ...(otherAudience ? [{
      client_id: otherAudience,
      client_secret: "the-other-applications-secret",
      redirect_uris: ["http://127.0.0.1:9/callback"],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    }] : [])],
    jwks: { keys: [jwk] },
    scopes: ["openid", "email", "groups", "offline_access"],
    claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups", "_claim_names", "_claim_sources"] },
    // The ID token carries the scopes' claims (as Keycloak, Okta and Entra do when configured).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          if (id === "olga") {
            return { sub: id, email: `${id}@example.com`, email_verified: true,
              _claim_names: { groups: "src1" }, _claim_sources: { src1: { endpoint: "https://graph.example.com/groups" } } };
          }
          return { sub: id, email: `${id}@example.com`, email_verified: true, groups: groups[id] || [] };
        },
      };
    },
    // A first-party application: no consent page.
    async loadExistingGrant(ctx) {
      const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (id) return ctx.oidc.provider.Grant.find(id);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email groups");
      grant.addOIDCClaims(["email", "email_verified", "groups", "_claim_names", "_claim_sources"]);
      await grant.save();
      return grant;
    },
    pkce: { required: () => true },
  });
}

// Listen first (port 0 picks one), then build the provider for the address bound.
import { createServer } from "node:http";
let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = createServer((req, res) => handler(req, res));
server.listen(port, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = configure(issuer);
  if (otherAudience) {
    // The token endpoint's answer, its ID token swapped for one issued to the other client.
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path !== "/token" || !ctx.body?.id_token) return;
      const claims = JSON.parse(Buffer.from(ctx.body.id_token.split(".")[1], "base64url"));
      const client = await provider.Client.find(otherAudience);
      const token = new provider.IdToken({ sub: claims.sub }, { ctx, client });
      token.scope = "openid";
      token.set("nonce", claims.nonce);
      ctx.body = { ...ctx.body, id_token: await token.issue({ use: "idtoken" }) };
    });
  }
  handler = provider.callback();
  console.log(`issuer ${issuer}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
