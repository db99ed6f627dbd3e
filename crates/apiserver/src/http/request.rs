//! What a request on a resource asks for, as kube-apiserver's `RequestInfo`: the verb, the
//! namespace, the resource, the name and the subresource.

use http::Method;

/// A verb on a resource, as authorization and audit name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb of `method` on an object (`named`) or a collection.
    pub(crate) fn of(method: &Method, named: bool, watching: bool) -> Option<Verb> {
        Some(match (method, named) {
            (&Method::GET, false) if watching => Verb::Watch,
            (&Method::GET, false) => Verb::List,
            (&Method::GET, true) => Verb::Get,
            (&Method::POST, _) => Verb::Create,
            (&Method::PUT, _) => Verb::Update,
            (&Method::PATCH, _) => Verb::Patch,
            (&Method::DELETE, false) => Verb::DeleteCollection,
            (&Method::DELETE, true) => Verb::Delete,
            _ => return None,
        })
    }

    /// The verb's name (`get`, `deletecollection`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Whether the verb writes, and so reads a body.
    pub(crate) fn writes(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// The parts of a resource path after `/api/v1` or `/apis/GROUP/VERSION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    /// The namespace of `namespaces/{ns}/...`, if any.
    pub(crate) namespace: Option<String>,
    /// The plural resource.
    pub(crate) resource: String,
    /// The object's name (empty for a collection).
    pub(crate) name: String,
    /// The subresource (`status`, `scale`, `finalize`), or empty.
    pub(crate) subresource: String,
}

impl ResourcePath {
    /// Splits the rest of a resource path; `None` when it is no resource path.
    pub(crate) fn parse(rest: &[&str]) -> Option<ResourcePath> {
        // `namespaces/{ns}/...`, unless it is a namespace's own subresource.
        let (namespace, parts): (Option<&str>, &[&str]) = match rest {
            ["namespaces", ns, next, more @ ..]
                if !matches!(*next, "status" | "finalize") || !more.is_empty() =>
            {
                (Some(*ns), &rest[2..])
            }
            _ => (None, rest),
        };
        let (resource, name, subresource) = match parts {
            [resource] => (*resource, "", ""),
            [resource, name] => (*resource, *name, ""),
            [resource, name, sub] => (*resource, *name, *sub),
            _ => return None,
        };
        Some(ResourcePath {
            namespace: namespace.map(str::to_string),
            resource: resource.into(),
            name: name.into(),
            subresource: subresource.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_as_request_info_does() {
        let check = |path: &str, expected: Option<(Option<&str>, &str, &str, &str)>| {
            let parts: Vec<&str> = path.split('/').collect();
            let parsed = ResourcePath::parse(&parts);
            let expected = expected.map(|(ns, r, n, s)| ResourcePath {
                namespace: ns.map(str::to_string),
                resource: r.into(),
                name: n.into(),
                subresource: s.into(),
            });
            assert_eq!(parsed, expected, "{path}");
        };
        check("configmaps", Some((None, "configmaps", "", "")));
        check("namespaces", Some((None, "namespaces", "", "")));
        check("namespaces/a", Some((None, "namespaces", "a", "")));
        check(
            "namespaces/a/status",
            Some((None, "namespaces", "a", "status")),
        );
        check(
            "namespaces/a/finalize",
            Some((None, "namespaces", "a", "finalize")),
        );
        check(
            "namespaces/a/configmaps",
            Some((Some("a"), "configmaps", "", "")),
        );
        check(
            "namespaces/a/widgets/w/scale",
            Some((Some("a"), "widgets", "w", "scale")),
        );
        check("namespaces/a/widgets/w/scale/more", None);
        assert_eq!(Verb::of(&Method::GET, false, true), Some(Verb::Watch));
        assert_eq!(Verb::of(&Method::HEAD, true, false), None);
        assert_eq!(Verb::DeleteCollection.as_str(), "deletecollection");
    }
}
