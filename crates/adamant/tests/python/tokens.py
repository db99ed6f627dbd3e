"""The official Kubernetes Python client with a ServiceAccount token (KUBECONFIG is the admin's).

As the admin, asks for a token of the ServiceAccount default/py (TokenRequest); then, as the
ServiceAccount (bound to `edit` in default by the calling test), creates and lists ConfigMaps
with a bearer token, and is refused where it holds nothing. A token that is not one is 401.
Exits non-zero on the first failure.
"""

from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config()
admin = client.ApiClient()
core = client.CoreV1Api(admin)

request = client.AuthenticationV1TokenRequest(
    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
answer = core.create_namespaced_service_account_token("py", "default", request)
token = answer.status.token
assert token and token.count(".") == 2, answer

settings = client.Configuration()
settings.host = admin.configuration.host
settings.ssl_ca_cert = admin.configuration.ssl_ca_cert
settings.api_key = {"authorization": token}
settings.api_key_prefix = {"authorization": "Bearer"}
robot = client.CoreV1Api(client.ApiClient(settings))

robot.create_namespaced_config_map("default", client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="from-python"), data={"k": "v"}))
names = [c.metadata.name for c in robot.list_namespaced_config_map("default").items]
assert "from-python" in names, names

try:
    robot.list_namespaced_config_map("kube-system")
    raise AssertionError("the ServiceAccount read kube-system")
except ApiException as refused:
    assert refused.status == 403, refused

settings.api_key = {"authorization": token + "x"}
forged = client.CoreV1Api(client.ApiClient(settings))
try:
    forged.list_namespaced_config_map("default")
    raise AssertionError("a forged token was accepted")
except ApiException as refused:
    assert refused.status == 401, refused

print("ok")
