//! Running a file vertex: copy, mkdir, mkfile, rm and symlink actions applied in order on a
//! fresh snapshot of input 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xbuild_dockerignore::Filter;
use xbuild_llb::{Definition, FileAction, FileOp, Vertex};
use xbuild_runtime::Reuse;
use xbuild_runtime::Root;
use xbuild_runtime::SnapshotterKind;
use xbuild_runtime::{CopySource, FileBackend};

use crate::{Error, Solved, Solver, blocking};

/// Input `i` of a file op as the actions read it.
#[derive(Clone)]
struct Input {
    dir: PathBuf,
    filter: Option<Arc<Filter>>,
    /// A stage or image (owners kept) rather than the build context (owners become root).
    keep_owner: bool,
}

impl Solver {
    /// Runs file vertex `v` on top of `parent`; returns the committed snapshot.
    pub(crate) async fn run_file(
        &self,
        def: &Definition,
        v: &Vertex,
        f: &FileOp,
        solved: &Solved,
        parent: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let mut views = Vec::new();
        let mut inputs: Vec<Input> = Vec::new();
        for (i, d) in v.inputs().iter().enumerate() {
            if i == 0 {
                inputs.push(Input {
                    dir: PathBuf::new(),
                    filter: None,
                    keep_owner: true,
                });
                continue;
            }
            match self.local_source(def, d)? {
                Some((source, filter)) => inputs.push(Input {
                    dir: source.dir().to_path_buf(),
                    filter,
                    keep_owner: false,
                }),
                None => {
                    let snap = self.input(solved, v, i)?.snapshot.clone();
                    let view = self.snapshots.view(snap.as_deref())?;
                    inputs.push(Input {
                        dir: view.path().to_path_buf(),
                        filter: None,
                        keep_owner: true,
                    });
                    views.push(view);
                }
            }
        }
        let active = self.snapshots.prepare(parent)?;
        self.hold(active.id())?;
        let mount = self.snapshots.mount(&active)?;
        let target = mount.path().to_path_buf();
        let note = self.snapshots.note_path(active.id(), REUSE_NOTE);
        let mut reuse = match (&note, self.reusable(f, &inputs)) {
            (Some(_), true) => {
                let previous = self.previous_copy(v)?;
                let prev = previous.as_ref().map(|(d, n)| (d.as_path(), n.as_path()));
                Some(Reuse::new(&active.upper(), &target, prev)?)
            }
            _ => None,
        };
        let actions = f.actions.clone();
        let files = self.files.clone();
        let (applied, reuse) = blocking(move || {
            let r = apply_file_actions(&*files, &target, &actions, &inputs, reuse.as_mut());
            Ok((r, reuse))
        })
        .await?;
        drop(views);
        let unmounted = mount.unmount();
        applied?;
        unmounted?;
        let linked = match (reuse, &note) {
            (Some(r), Some(note)) => Some(r.finish(note)?),
            _ => None,
        };
        let id = self.snapshots.commit(active)?;
        if let Some(linked) = linked {
            tracing::debug!(vertex = %v.digest(), linked, "copy linked unchanged files");
            self.snapshots.remember_copy(v.digest(), &id);
        }
        Ok(Some(id))
    }

    /// Whether file vertex `v` is a copy from the build context that can link what an earlier
    /// run of it wrote: overlay snapshots, nothing but copies (no archive unpacking) to one
    /// destination, every one from a local source.
    fn reusable(&self, f: &FileOp, inputs: &[Input]) -> bool {
        let dest = match f.actions.first() {
            Some(FileAction::Copy(c)) => &c.dest,
            _ => return false,
        };
        self.snapshots.kind() == SnapshotterKind::Overlay
            && f.actions.iter().all(|a| match a {
                FileAction::Copy(c) => {
                    &c.dest == dest
                        && !c.attempt_unpack
                        && inputs
                            .get(c.input)
                            .is_some_and(|i| c.input > 0 && !i.keep_owner)
                }
                _ => false,
            })
    }

    /// The directory of changes and the reuse note of the snapshot the copy `v` made last,
    /// held for this build, when it is still there.
    fn previous_copy(&self, v: &Vertex) -> Result<Option<(PathBuf, PathBuf)>, Error> {
        let Some(id) = self.snapshots.last_copy(v.digest()) else {
            return Ok(None);
        };
        let Some(note) = self.snapshots.note_path(&id, REUSE_NOTE) else {
            return Ok(None);
        };
        if self.snapshots.changes_dir(&id).is_none() {
            return Ok(None);
        }
        self.hold(&id)?;
        // Held now, so a prune cannot take it any more; it may have before.
        Ok(self.snapshots.changes_dir(&id).map(|dir| (dir, note)))
    }
}

/// The note in which a copy's snapshot records what its files were copied from.
const REUSE_NOTE: &str = "copied";

/// Applies a file op's actions on the mounted `target` through `files`, copies through
/// `reuse` when given.
fn apply_file_actions(
    files: &dyn FileBackend,
    target: &Path,
    actions: &[FileAction],
    inputs: &[Input],
    mut reuse: Option<&mut Reuse>,
) -> Result<(), Error> {
    let dest = Root::open(target)?;
    for a in actions {
        match a {
            FileAction::Copy(c) => {
                let input =
                    inputs
                        .get(c.input)
                        .filter(|_| c.input > 0)
                        .ok_or_else(|| Error::Missing {
                            what: format!("copy input {}", c.input),
                        })?;
                let source = CopySource {
                    dir: &input.dir,
                    filter: input.filter.as_deref(),
                    keep_owner: input.keep_owner,
                };
                files.copy(&dest, &source, c, reuse.as_deref_mut())?;
            }
            FileAction::Mkdir(m) => files.mkdir(&dest, m)?,
            FileAction::Mkfile(m) => files.mkfile(&dest, m)?,
            FileAction::Rm(r) => files.rm(&dest, r)?,
            FileAction::Symlink(s) => files.symlink(&dest, s)?,
        }
    }
    Ok(())
}
