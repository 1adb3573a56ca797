use super::*;
use wayline_proto::plugin::v1::GenerationId;

struct Echo;

#[async_trait]
impl MapFn for Echo {
    async fn map(&self, input: Any) -> Result<Any, PluginError> {
        Ok(input)
    }
}

fn reg(edges: &[(&str, &str, &str)]) -> MapperRegistry {
    let mut r = MapperRegistry::new();
    for (name, a, b) in edges {
        r.add(Mapper::erased(*name, *a, *b, Arc::new(Echo)));
    }
    r
}

#[test]
fn chain_of_length_zero_when_types_match() {
    let r = reg(&[("ab", "A", "B")]);
    assert!(r.find_chain("A", "A").unwrap().is_empty());
}

#[test]
fn chains_of_length_one_two_three() {
    let r = reg(&[
        ("ab", "A", "B"),
        ("bc", "B", "C"),
        ("cd", "C", "D"),
        ("zz", "X", "Y"),
    ]);
    assert_eq!(r.find_chain("A", "B").unwrap().names(), ["ab"]);
    assert_eq!(r.find_chain("A", "C").unwrap().names(), ["ab", "bc"]);
    assert_eq!(r.find_chain("A", "D").unwrap().names(), ["ab", "bc", "cd"]);
}

#[test]
fn prefers_shortest_then_name_order() {
    let r = reg(&[
        ("a-long1", "A", "B"),
        ("a-long2", "B", "C"),
        ("a-long3", "C", "D"),
        ("z-short1", "A", "E"),
        ("z-short2", "E", "D"),
        ("y-short1", "A", "F"),
        ("y-short2", "F", "D"),
    ]);
    // Two chains of length 2; `y-…` names sort before `z-…`.
    assert_eq!(
        r.find_chain("A", "D").unwrap().names(),
        ["y-short1", "y-short2"]
    );
    // Insertion order does not matter.
    let r2 = reg(&[
        ("z-short2", "E", "D"),
        ("y-short2", "F", "D"),
        ("z-short1", "A", "E"),
        ("y-short1", "A", "F"),
    ]);
    assert_eq!(
        r2.find_chain("A", "D").unwrap().names(),
        ["y-short1", "y-short2"]
    );
}

#[test]
fn cycles_terminate() {
    let r = reg(&[
        ("ab", "A", "B"),
        ("ba", "B", "A"),
        ("bb", "B", "B"),
        ("bc", "B", "C"),
    ]);
    assert_eq!(r.find_chain("A", "C").unwrap().names(), ["ab", "bc"]);
    assert_eq!(
        r.find_chain("A", "Z").unwrap_err().to_string(),
        "no mapper converts `A` into `Z`; known mappers: ab (A -> B), ba (B -> A), bb (B -> B), bc (B -> C)"
    );
}

#[test]
fn no_path_error_names_both_types() {
    assert_eq!(
        MapperRegistry::new()
            .find_chain("a.A", "b.B")
            .unwrap_err()
            .to_string(),
        "no mapper converts `a.A` into `b.B`; no mappers are registered"
    );
}

#[test]
fn replacing_a_mapper_drops_its_old_edge() {
    let mut r = reg(&[("m", "A", "B")]);
    r.add(Mapper::erased("m", "X", "B", Arc::new(Echo)));
    assert!(r.find_chain("A", "B").is_err());
    assert_eq!(r.find_chain("X", "B").unwrap().names(), ["m"]);
}

#[tokio::test]
async fn typed_mappers_convert_values() {
    let mut r = MapperRegistry::new();
    r.add(Mapper::new("double", |g: GenerationId| {
        Ok(GenerationId {
            id: format!("{0}{0}", g.id),
        })
    }));
    let out = r
        .find_chain(
            "wayline.plugin.v1.GenerationId",
            "wayline.plugin.v1.GenerationId",
        )
        .unwrap();
    assert!(out.is_empty());
    let m = r.iter().next().unwrap();
    let any = m
        .apply(GenerationId { id: "ab".into() }.to_any())
        .await
        .unwrap();
    assert_eq!(GenerationId::from_any(&any).unwrap().id, "abab");
}
