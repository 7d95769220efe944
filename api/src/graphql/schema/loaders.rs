//! DataLoaders: the models of many series, and the training data of many versions, each in one
//! database query per batch instead of one per parent object.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use anomaly_workers::domain::{Point, SeriesId, Version};
use anomaly_workers::model::TrainedModel;
use anomaly_workers::store::{Models, StoreError, TrainingPoints};

/// Every version of a series, oldest first.
pub struct ModelsLoader(pub Arc<dyn Models>);

/// A version's training points.
pub struct TrainingDataLoader(pub Arc<dyn TrainingPoints>);

/// Loader errors must be cloneable; the store's error is shared.
pub type LoadError = Arc<StoreError>;

impl Loader<SeriesId> for ModelsLoader {
    type Value = Vec<TrainedModel>;
    type Error = LoadError;

    async fn load(&self, keys: &[SeriesId]) -> Result<HashMap<SeriesId, Self::Value>, Self::Error> {
        let mut found: HashMap<SeriesId, Self::Value> = HashMap::new();
        for model in self.0.models_for(keys).await.map_err(Arc::new)? {
            found
                .entry(model.series_id.clone())
                .or_default()
                .push(model);
        }
        Ok(found)
    }
}

impl Loader<(SeriesId, Version)> for TrainingDataLoader {
    type Value = Vec<Point>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(SeriesId, Version)],
    ) -> Result<HashMap<(SeriesId, Version), Self::Value>, Self::Error> {
        Ok(self
            .0
            .training_points_for(keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .collect())
    }
}
