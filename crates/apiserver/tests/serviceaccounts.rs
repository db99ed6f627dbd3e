//! ServiceAccount tokens at the authenticator: a TokenRequest's token is the ServiceAccount's
//! user; tokens signed with the installation's key but expired, not yet valid, for another
//! audience, naming another subject or a ServiceAccount since recreated are refused; tokens of
//! other issuers are left to other authenticators.

use crate::common;

use apiserver::auth::TokenAuthenticator;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pki::names;
use serde_json::{Value, json};

const ISSUER: &str = apiserver::serviceaccounts::DEFAULT_ISSUER;

async fn token_request(h: &common::Harness, name: &str, spec: Value) -> (u16, Value) {
    h.send_json(
        "POST",
        &format!("/api/v1/namespaces/default/serviceaccounts/{name}/token"),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .await
}

#[tokio::test]
async fn service_account_tokens_hold_only_while_everything_they_name_does() {
    let h = common::harness().await;
    let (status, account) = h
        .send_json(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let uid = account["metadata"]["uid"].as_str().unwrap().to_string();
    let accounts = h.server.service_accounts().clone();

    let (status, answer) = token_request(&h, "robot", json!({})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["spec"]["audiences"], json!([ISSUER]));
    assert_eq!(answer["spec"]["expirationSeconds"], 3600);
    let token = answer["status"]["token"].as_str().unwrap();
    let user = accounts.authenticate(token).await.unwrap().unwrap();
    assert_eq!(user.name, "system:serviceaccount:default:robot");
    assert_eq!(user.uid, uid);
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    assert!(
        user.extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="),
        "{user:?}"
    );

    // What a TokenRequest may not ask for.
    for (spec, words) in [
        (
            json!({"expirationSeconds": 60}),
            "may not specify a duration less than 10 minutes",
        ),
        (
            json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}),
            "spec.boundObjectRef.kind: Unsupported value: \"Pod\"",
        ),
    ] {
        let (status, refusal) = token_request(&h, "robot", spec).await;
        assert_eq!(status, 422, "{refusal}");
        assert!(
            refusal["message"].as_str().unwrap().contains(words),
            "{refusal}"
        );
    }
    let (status, refusal) = token_request(&h, "nobody", json!({})).await;
    assert_eq!(status, 404, "{refusal}");
    // Long requests are shortened to the server's maximum (48 hours by default).
    let (_, long) = token_request(&h, "robot", json!({"expirationSeconds": 10_000_000})).await;
    assert_eq!(long["spec"]["expirationSeconds"], 48 * 3600);

    // Tokens signed with the right key that do not hold.
    let key = h
        .server
        .vault()
        .get(names::SERVICE_ACCOUNT)
        .await
        .unwrap()
        .unwrap();
    let key = EncodingKey::from_ec_pem(key.key_pem.as_bytes()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let claims = |change: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "iss": ISSUER,
            "sub": "system:serviceaccount:default:robot",
            "aud": [ISSUER],
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "jti": "j",
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "robot", "uid": uid}},
        });
        change(&mut claims);
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap()
    };
    assert!(
        accounts
            .authenticate(&claims(&|_| {}))
            .await
            .unwrap()
            .is_some(),
        "the reference token holds"
    );
    for (why, token) in [
        ("expired", claims(&|c| c["exp"] = json!(now - 60))),
        ("not yet valid", claims(&|c| c["nbf"] = json!(now + 600))),
        (
            "another audience",
            claims(&|c| c["aud"] = json!(["https://elsewhere"])),
        ),
        (
            "another subject",
            claims(&|c| c["sub"] = json!("system:serviceaccount:default:admin")),
        ),
        (
            "another uid",
            claims(&|c| c["kubernetes.io"]["serviceaccount"]["uid"] = json!("0000")),
        ),
    ] {
        let refused = accounts.authenticate(&token).await;
        assert!(refused.is_err(), "{why}: {refused:?}");
    }
    let other_key = rcgen::KeyPair::generate().unwrap();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &json!({"iss": ISSUER, "sub": "system:serviceaccount:default:robot", "aud": [ISSUER], "exp": now + 600}),
        &EncodingKey::from_ec_pem(other_key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let refused = accounts.authenticate(&forged).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("InvalidSignature")),
        "{refused:?}"
    );
    // Another issuer's token, or no JWT at all: for other authenticators.
    let foreign = claims(&|c| c["iss"] = json!("https://id.example.com"));
    assert_eq!(accounts.authenticate(&foreign).await, Ok(None));
    assert_eq!(accounts.authenticate("s3cr3t").await, Ok(None));

    // Deleted, then recreated under the same name: the old token no longer holds.
    let (status, _) = h
        .send_json(
            "DELETE",
            "/api/v1/namespaces/default/serviceaccounts/robot",
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    let gone = accounts.authenticate(token).await;
    assert!(
        gone.as_ref().is_err_and(|e| e.contains("no longer exists")),
        "{gone:?}"
    );
    h.send_json(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
    )
    .await;
    let recreated = accounts.authenticate(token).await;
    assert!(
        recreated.as_ref().is_err_and(|e| e.contains("recreated")),
        "{recreated:?}"
    );
}
