//! Resolving `USER` and `--chown` names through a rootfs's `/etc/passwd` and `/etc/group`.

use std::io::Read;
use std::os::fd::AsFd;

use xbuild_llb::{Chown, IdSpec};

use crate::Error;
use crate::fsops::Root;

/// A process identity inside a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups (the user's memberships in `/etc/group`).
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_etc(root: &Root, file: &str) -> String {
    let Ok(Some(fd)) = root.resolve(file, true) else {
        return String::new();
    };
    let Ok(f) = Root::reopen(&fd, false) else {
        return String::new();
    };
    let mut s = String::new();
    let _ = std::fs::File::from(f).read_to_string(&mut s);
    let _ = fd.as_fd();
    s
}

fn passwd(root: &Root) -> Vec<PasswdEntry> {
    read_etc(root, "etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn groups(root: &Root) -> Vec<GroupEntry> {
    read_etc(root, "etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves a RUN step's `user[:group]` in the rootfs: names must exist; a numeric uid that is
/// not in passwd runs with gid 0, one that is gets its passwd group.
pub fn resolve_user(root: &Root, user: &str) -> Result<Identity, Error> {
    if user.is_empty() {
        return Ok(Identity {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw = passwd(root);
    let gr = groups(root);
    let entry = match u.parse::<u32>() {
        Ok(uid) => pw.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            pw.iter()
                .find(|p| p.name == u)
                .ok_or_else(|| Error::UnknownUser {
                    user: user.to_string(),
                    what: format!("no user named {u:?} in /etc/passwd"),
                })?,
        ),
    };
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(e)) => e.uid,
        (Err(_), None) => 0,
    };
    let name = entry.map(|e| e.name.clone());
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|x| x.name == g)
                .map(|x| x.gid)
                .ok_or_else(|| Error::UnknownUser {
                    user: user.to_string(),
                    what: format!("no group named {g:?} in /etc/group"),
                })?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let additional_gids = match (&name, g) {
        (Some(n), None) => gr
            .iter()
            .filter(|x| x.members.iter().any(|m| m == n) && x.gid != gid)
            .map(|x| x.gid)
            .collect(),
        _ => vec![],
    };
    Ok(Identity {
        uid,
        gid,
        additional_gids,
    })
}

/// Resolves a `--chown` spec in the destination rootfs, as BuildKit does: a numeric user alone
/// means the same gid; a name takes its primary group; a name missing from passwd becomes 0
/// (with a warning); an unknown group keeps the user's gid.
pub fn resolve_chown(root: &Root, chown: &Chown) -> (u32, u32) {
    let pw = passwd(root);
    let (uid, primary) = match &chown.user {
        IdSpec::Id(n) => (*n, *n),
        IdSpec::Name(name) => match pw.iter().find(|p| &p.name == name) {
            Some(e) => (e.uid, e.gid),
            None => {
                tracing::warn!(user = %name, "chown: user not found in /etc/passwd, using 0");
                (0, 0)
            }
        },
    };
    let gid = match &chown.group {
        None => primary,
        Some(IdSpec::Id(n)) => *n,
        Some(IdSpec::Name(name)) => groups(root)
            .iter()
            .find(|g| &g.name == name)
            .map(|g| g.gid)
            .unwrap_or(primary),
    };
    (uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn users() {
        let d = rootfs();
        let r = Root::open(d.path()).unwrap();
        let app = resolve_user(&r, "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![10])
        );
        assert_eq!(resolve_user(&r, "1000").unwrap().gid, 1000);
        assert_eq!(resolve_user(&r, "4242").unwrap().gid, 0);
        assert_eq!(resolve_user(&r, "app:wheel").unwrap().gid, 10);
        assert!(resolve_user(&r, "ghost").is_err());
        assert!(resolve_user(&r, "app:ghosts").is_err());
    }

    #[test]
    fn chown_rules() {
        let d = rootfs();
        let r = Root::open(d.path()).unwrap();
        let c = |u: IdSpec, g: Option<IdSpec>| resolve_chown(&r, &Chown { user: u, group: g });
        assert_eq!(c(IdSpec::Id(2000), None), (2000, 2000));
        assert_eq!(c(IdSpec::Name("app".into()), None), (1000, 1000));
        assert_eq!(c(IdSpec::Name("ghost".into()), None), (0, 0));
        assert_eq!(
            c(
                IdSpec::Name("app".into()),
                Some(IdSpec::Name("nope".into()))
            ),
            (1000, 1000)
        );
        assert_eq!(
            c(
                IdSpec::Name("app".into()),
                Some(IdSpec::Name("wheel".into()))
            ),
            (1000, 10)
        );
    }
}
