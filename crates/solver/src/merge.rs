//! Running a merge vertex (`COPY --link`): the inputs' layers stacked in order, each layer
//! re-used on its new base without copying its content.

use xbuild_llb::Vertex;

use crate::{Error, Solved, Solver};

impl Solver {
    /// Stacks the layers of `v`'s inputs, later inputs on top; returns the top snapshot.
    pub(crate) fn run_merge(&self, v: &Vertex, solved: &Solved) -> Result<Option<String>, Error> {
        let mut top: Option<String> = None;
        let mut stacked: Vec<String> = Vec::new();
        for i in 0..v.inputs().len() {
            let Some(snap) = self.input(solved, v, i)?.snapshot.clone() else {
                continue;
            };
            let mut chain = self.snapshots.chain(&snap)?;
            chain.reverse();
            // Layers this input shares with what is stacked already are there once.
            let shared = chain
                .iter()
                .zip(&stacked)
                .take_while(|(a, b)| a == b)
                .count();
            if top.is_none() {
                top = Some(snap);
                stacked = chain;
                continue;
            }
            if shared == chain.len() {
                continue;
            }
            for layer in &chain[shared..] {
                let next = self.snapshots.rebase(layer, top.as_deref())?;
                stacked.push(next.clone());
                top = Some(next);
            }
        }
        Ok(top)
    }
}
