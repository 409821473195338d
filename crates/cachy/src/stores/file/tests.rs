use super::*;

#[test]
fn paths_follow_python_cachy_layout() {
    let store = FileStore::new("/cache", HashType::Md5);
    // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8
    assert_eq!(
        store.path_of("foo"),
        PathBuf::from("/cache/ac/bd/acbd18db4cc2f85cedef654fccc4a4d8")
    );
    let sha256 = FileStore::new("/cache", HashType::Sha256).path_of("foo");
    // sha256("foo") = 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    assert_eq!(
        sha256,
        PathBuf::from(
            "/cache/2c/26/b4/6b/68/ff/c6/8f/\
             2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        )
    );
}

#[test]
fn the_temporary_files_writes_create_are_the_names_prune_takes() {
    let dir = tempfile::tempdir().unwrap();
    // Many, so that a letter or digit `tempfile` might draw outside ASCII would show.
    for _ in 0..200 {
        let file = temporary_file(dir.path()).unwrap();
        let name = file.path().file_name().unwrap();
        assert!(is_temporary_name(name), "{name:?}");
    }
    for other in [
        ".tmp",
        ".tmpAbC12",
        ".tmpAbC1234",
        ".tmpAb-123",
        ".tmpAbé12",
        "tmpAbC123",
        "x.tmpAbC12",
        ".TMPAbC123",
        ".cachy-lock",
        "acbd18db4cc2f85cedef654fccc4a4d8",
    ] {
        assert!(!is_temporary_name(other.as_ref()), "{other}");
    }
}

#[test]
fn modes_parse_as_octal_and_folders_get_search_bits() {
    let mode = |text: &str| {
        let config = crate::config::StoreConfig::new("file")
            .with("path", "/cache")
            .with("permissions", text);
        FileStore::from_config(&config).map(|store| store.inner.file_mode)
    };
    assert_eq!(mode("0640").ok(), Some(0o640));
    assert_eq!(mode("660").ok(), Some(0o660));
    assert_eq!(mode("0o600").ok(), Some(0o600));
    for bad in [
        "",
        "64",
        "06400",
        "0x640",
        "rw-r-----",
        "0400",
        "0800",
        "4755",
    ] {
        let error = mode(bad).unwrap_err();
        assert!(
            error.field().is_some_and(|f| f.ends_with(".permissions")),
            "{bad}: {error}"
        );
    }
    let folder_mode = |mode| {
        let store = FileStore::new("/cache", HashType::Md5)
            .with_permissions(mode)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(store.inner.folder_mode())
    };
    assert_eq!(folder_mode(0o600), Ok(0o700));
    assert_eq!(folder_mode(0o640), Ok(0o750));
    assert_eq!(folder_mode(0o660), Ok(0o770));
    assert_eq!(folder_mode(0o644), Ok(0o755));
}
