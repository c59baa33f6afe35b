//! Row-by-row operators without state: [`Filter`] and [`Map`].

use std::sync::Arc;

use crate::error::Result;
use crate::stream::dataflow::{Data, Op, Refusals, Rows};
use crate::stream::sink::BatchInfo;

type Pred<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;
type MapFn<T, U> = Arc<dyn Fn(&T) -> U + Send + Sync>;

/// Keeps the rows a predicate accepts.
pub(super) struct Filter<T> {
    keep: Pred<T>,
}

impl<T> Filter<T> {
    pub(super) fn new(keep: Pred<T>) -> Filter<T> {
        Filter { keep }
    }
}

impl<T: Data> Op<T, T> for Filter<T> {
    fn check(&self, _batch: &BatchInfo, rows: &[T], down: &dyn Fn(&[T]) -> Refusals) -> Refusals {
        let origin: Vec<usize> = (0..rows.len()).filter(|i| (self.keep)(&rows[*i])).collect();
        if origin.len() == rows.len() {
            return down(rows);
        }
        let kept: Vec<T> = origin.iter().map(|i| rows[*i].clone()).collect();
        down(&kept)
            .into_iter()
            .map(|(i, why)| (origin[i], why))
            .collect()
    }

    fn run<'a>(&mut self, _batch: &BatchInfo, rows: Rows<'a, T>) -> Result<Rows<'a, T>> {
        Ok(match rows {
            Rows::Borrowed(r) if r.iter().all(|x| (self.keep)(x)) => Rows::Borrowed(r),
            Rows::Borrowed(r) => {
                Rows::Owned(r.iter().filter(|x| (self.keep)(x)).cloned().collect())
            }
            Rows::Owned(mut v) => {
                v.retain(|x| (self.keep)(x));
                Rows::Owned(v)
            }
        })
    }
}

/// Turns each row into a row of another type.
pub(super) struct Map<T, U> {
    f: MapFn<T, U>,
}

impl<T, U> Map<T, U> {
    pub(super) fn new(f: MapFn<T, U>) -> Map<T, U> {
        Map { f }
    }
}

impl<T: Data, U: Data> Op<T, U> for Map<T, U> {
    fn check(&self, _batch: &BatchInfo, rows: &[T], down: &dyn Fn(&[U]) -> Refusals) -> Refusals {
        let mapped: Vec<U> = rows.iter().map(|r| (self.f)(r)).collect();
        down(&mapped)
    }

    fn run<'a>(&mut self, _batch: &BatchInfo, rows: Rows<'a, T>) -> Result<Rows<'a, U>> {
        Ok(Rows::Owned(rows.iter().map(|r| (self.f)(r)).collect()))
    }
}
