//! The bindings against the C contract: every function and enum value of
//! the installed header is declared in `sys` with the same number, the
//! structs have the library's sizes, and the loaded library is the one
//! pkg-config described.

mod common;

use std::collections::BTreeMap;
use std::os::raw::{c_int, c_void};
use std::path::PathBuf;

use common::setup;
use dnngen::{sys, Status};

const SYS_RS: &str = include_str!("../src/sys.rs");

/// The header the crate was built against: from pkg-config's -I flags
/// (an installed library), else the source tree around the crate.
fn header() -> (PathBuf, String) {
    let mut candidates: Vec<PathBuf> = env!("DNNGEN_INCLUDE_DIRS")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("dnngen.h"))
        .collect();
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/dnngen.h"));
    for c in &candidates {
        if let Ok(text) = std::fs::read_to_string(c) {
            return (c.clone(), text);
        }
    }
    panic!("dnngen.h not found in {:?}", candidates);
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = match rest[i + 2..].find("*/") {
            Some(j) => &rest[i + 2 + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn ident_before(s: &str) -> &str {
    let t = s.trim_end();
    let start = t
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    &t[start..]
}

/// Names of the functions the header declares with DNG_API.
fn header_functions(h: &str) -> Vec<String> {
    let mut names: Vec<String> = h
        .split("DNG_API")
        .skip(1)
        .filter_map(|chunk| {
            chunk
                .find('(')
                .map(|i| ident_before(&chunk[..i]).to_string())
        })
        .filter(|n| n.starts_with("dng_"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `NAME = number` pairs inside the header's enums (DNG_ names only).
fn header_enum_values(h: &str) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for block in h.split("typedef enum").skip(1) {
        let body = &block[block.find('{').unwrap() + 1..block.find('}').unwrap()];
        for item in body.split(',') {
            let mut kv = item.splitn(2, '=');
            let (k, v) = (kv.next().unwrap().trim(), kv.next().map(str::trim));
            if let Some(v) = v {
                // The status enum is generated from DNG_STATUS_MAP and is
                // checked through that table instead.
                let ident = k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ident && k.starts_with("DNG_") && !k.starts_with("DNG__") {
                    m.insert(k.to_string(), v.parse::<i64>().expect(k));
                }
            }
        }
    }
    m
}

/// The status table X(NAME, number, "text") of DNG_STATUS_MAP.
fn header_statuses(h: &str) -> Vec<(String, i32, String)> {
    let map = &h[h.find("#define DNG_STATUS_MAP(X)").expect("DNG_STATUS_MAP")..];
    let map = &map[..map.find("typedef enum dng_status").expect("dng_status")];
    map.split("X(")
        .skip(1) // the text before the first entry
        .map(|e| {
            let mut parts = e.splitn(3, ',');
            let name = parts.next().unwrap().trim().to_string();
            let num = parts.next().unwrap().trim().parse().unwrap();
            let text = parts.next().unwrap();
            let text = text[text.find('"').unwrap() + 1..text.rfind('"').unwrap()].to_string();
            (name, num, text)
        })
        .collect()
}

fn sys_functions() -> Vec<String> {
    let mut names: Vec<String> = SYS_RS
        .split("pub fn ")
        .skip(1)
        .map(|c| c[..c.find('(').unwrap()].trim().to_string())
        .collect();
    names.sort();
    names
}

fn sys_consts() -> BTreeMap<String, i64> {
    SYS_RS
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const DNG_"))
        .filter_map(|l| {
            let name = format!("DNG_{}", &l[..l.find(':')?]);
            let v = l[l.find('=')? + 1..].trim().trim_end_matches(';').trim();
            Some((name, v.parse::<i64>().ok()?))
        })
        .collect()
}

#[test]
fn sys_declares_every_header_function() {
    let (path, text) = header();
    let h = strip_comments(&text);
    let want = header_functions(&h);
    assert!(
        want.len() > 100,
        "only {} functions parsed from {:?}",
        want.len(),
        path
    );
    let have = sys_functions();
    let missing: Vec<_> = want.iter().filter(|n| !have.contains(n)).collect();
    let extra: Vec<_> = have.iter().filter(|n| !want.contains(n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{:?}: missing from sys.rs {:?}, not in the header {:?}",
        path,
        missing,
        extra
    );
}

#[test]
fn sys_enum_values_match_the_header() {
    let (path, text) = header();
    let h = strip_comments(&text);
    let want = header_enum_values(&h);
    assert!(
        want.len() >= 26,
        "only {} enum values parsed from {:?}",
        want.len(),
        path
    );
    let have = sys_consts();
    for (k, v) in &want {
        assert_eq!(have.get(k), Some(v), "{} in {:?}", k, path);
    }
    assert!(h.contains(&format!("#define DNG_MAX_DIMS {}", sys::DNG_MAX_DIMS)));

    // The status table: numbers in sys, texts in the library.
    let statuses = header_statuses(&h);
    assert_eq!(statuses.len(), 9, "{:?}", statuses);
    for (name, num, text) in statuses {
        assert_eq!(
            have.get(&format!("DNG_{}", name)),
            Some(&(num as i64)),
            "{}",
            name
        );
        match Status::from_code(num) {
            None => assert_eq!(num, 0),
            Some(s) => {
                assert_eq!(s.code(), num);
                assert!(
                    !matches!(s, Status::Other(_)),
                    "{} has no Status variant",
                    name
                );
                assert_eq!(s.description(), text);
            }
        }
    }
}

#[test]
fn version_matches_pkg_config() {
    let v = dnngen::version_string();
    assert_eq!(v, env!("DNNGEN_PC_VERSION"));
    let parts: Vec<i32> = v.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(
        dnngen::version(),
        parts[0] * 10000 + parts[1] * 100 + parts[2]
    );
}

#[test]
fn thread_setting_checks_its_range() {
    setup();
    assert_eq!(dnngen::num_threads(), 1);
    let e = dnngen::set_num_threads(-3).unwrap_err();
    assert_eq!(e.status(), Some(Status::InvalidArgument));
    assert!(e.message().contains("-3"), "{}", e.message());
    assert_eq!(dnngen::num_threads(), 1);
}

unsafe extern "C" fn record_fit(p: *const sys::dng_fit_progress, user: *mut c_void) -> c_int {
    *(user as *mut usize) = (*p).size;
    1
}

unsafe extern "C" fn record_gan(p: *const sys::dng_gan_progress, user: *mut c_void) -> c_int {
    *(user as *mut usize) = (*p).size;
    1
}

#[test]
fn struct_sizes_match_the_library() {
    setup();
    let mut o = std::mem::MaybeUninit::<sys::dng_fit_options>::zeroed();
    let o = unsafe {
        sys::dng_fit_options_default(o.as_mut_ptr());
        o.assume_init()
    };
    assert_eq!(o.size, std::mem::size_of::<sys::dng_fit_options>());
    assert_eq!(
        (o.epochs, o.batch_size, o.shuffle),
        (10, 64, 1),
        "documented defaults"
    );

    // The sizes the library writes into its progress reports.
    let x = dnngen::Tensor::from_slice(&[2, 1], &[0.0, 1.0]).unwrap();
    let ds = dnngen::Dataset::from_tensors(&x, Some(&x)).unwrap();
    let mut net = dnngen::Net::new(&[1]).unwrap();
    net.add(dnngen::Layer::dense(1, 1).unwrap()).unwrap();
    let mut opt = dnngen::Optim::sgd(0.1, 0.0, false, 0.0).unwrap();
    let mut size = 0usize;
    let s = unsafe {
        sys::dng_fit(
            net.as_mut_ptr(),
            opt.as_mut_ptr(),
            sys::DNG_LOSS_MSE,
            ds.as_ptr(),
            std::ptr::null(),
            &o,
            Some(record_fit),
            &mut size as *mut usize as *mut c_void,
        )
    };
    assert_eq!(s, sys::DNG_OK);
    assert_eq!(size, std::mem::size_of::<sys::dng_fit_progress>());

    let mut g = dnngen::Net::new(&[1]).unwrap();
    g.add(dnngen::Layer::dense(1, 1).unwrap()).unwrap();
    let mut d = dnngen::Net::new(&[1]).unwrap();
    d.add(dnngen::Layer::dense(1, 1).unwrap()).unwrap();
    let mut go = dnngen::Optim::sgd(0.1, 0.0, false, 0.0).unwrap();
    let mut dopt = dnngen::Optim::sgd(0.1, 0.0, false, 0.0).unwrap();
    unsafe {
        let gan = sys::dng_gan_create(
            g.as_mut_ptr(),
            d.as_mut_ptr(),
            go.as_mut_ptr(),
            dopt.as_mut_ptr(),
        );
        assert!(!gan.is_null());
        let mut size = 0usize;
        let s = sys::dng_gan_train(
            gan,
            ds.as_ptr(),
            1,
            2,
            Some(record_gan),
            &mut size as *mut usize as *mut c_void,
        );
        assert_eq!(s, sys::DNG_OK);
        assert_eq!(size, std::mem::size_of::<sys::dng_gan_progress>());
        // dng_gan_step refuses a stats struct smaller than its own.
        let mut st = sys::dng_gan_stats {
            size: std::mem::size_of::<sys::dng_gan_stats>() - 1,
            ..Default::default()
        };
        assert_eq!(
            sys::dng_gan_step(gan, x.as_ptr(), std::ptr::null_mut(), &mut st),
            sys::DNG_ERR_INVALID_ARGUMENT
        );
        st.size += 1;
        assert_eq!(
            sys::dng_gan_step(gan, x.as_ptr(), std::ptr::null_mut(), &mut st),
            sys::DNG_OK
        );
        assert_eq!(st.step, 2);
        sys::dng_gan_destroy(gan);
    }
}
