"""The official Kubernetes Python client against adamant serve (KUBECONFIG points at it).

Lists, creates and watches with the typed client, then uses the dynamic client on the Widget
kind that the calling test defined with a CRD. Exits non-zero on the first failure.
"""

import threading

from kubernetes import client, config, dynamic, watch

config.load_kube_config()
api = client.ApiClient()
core = client.CoreV1Api(api)

names = sorted(ns.metadata.name for ns in core.list_namespace().items)
assert names == ["default", "kube-public", "kube-system"], names

events = []
listed = core.list_namespaced_config_map("default")
start = listed.metadata.resource_version
assert start, "a list has a resource version"


def watch_config_maps():
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, "default",
                          resource_version=start, timeout_seconds=20):
        events.append((event["type"], event["object"].metadata.name,
                       (event["object"].data or {}).get("k")))
        if event["type"] == "DELETED":
            w.stop()


watcher = threading.Thread(target=watch_config_maps)
watcher.start()

body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}),
                          data={"k": "1"})
created = core.create_namespaced_config_map("default", body)
assert created.metadata.uid and created.metadata.resource_version
core.patch_namespaced_config_map("py", "default", [{"op": "replace", "path": "/data/k", "value": "2"}])
selected = core.list_namespaced_config_map("default", label_selector="from=python")
assert [c.metadata.name for c in selected.items] == ["py"]
core.delete_namespaced_config_map("py", "default")
watcher.join(30)
assert events == [("ADDED", "py", "1"), ("MODIFIED", "py", "2"), ("DELETED", "py", "2")], events

try:
    core.read_namespaced_config_map("py", "default")
    raise AssertionError("deleted object still readable")
except client.exceptions.ApiException as e:
    assert e.status == 404, e

dyn = dynamic.DynamicClient(api)
widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
widgets.create(namespace="default", body={
    "apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": {"name": "pw"}, "spec": {"size": 2},
})
got = widgets.get(name="pw", namespace="default")
assert got.spec.color == "red", got  # defaulted by the schema
widgets.patch(name="pw", namespace="default", body={"spec": {"size": 5}},
              content_type="application/merge-patch+json")
items = widgets.get(namespace="default").items
assert [(w.metadata.name, w.spec.size) for w in items] == [("pw", 5)], items
try:
    widgets.create(namespace="default", body={
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "bad"}, "spec": {"size": 0},
    })
    raise AssertionError("an invalid widget was accepted")
except dynamic.exceptions.UnprocessibleEntityError as e:  # (sic)
    assert "spec.size" in str(e.body), e.body
widgets.delete(name="pw", namespace="default")
assert widgets.get(namespace="default").items == []
print("python client: ok")
