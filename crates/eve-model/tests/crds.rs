//! The generated CustomResourceDefinitions.

#[test]
fn dump() {
    for crd in eve_model::crds_yaml() {
        if crd["spec"]["names"]["kind"] == "Application" {
            println!("{}", serde_json::to_string_pretty(&crd).unwrap());
        }
    }
}
