// aedes-persistence-level ships without typings. It takes an open-able abstract-level database
// (classic-level here) and returns an aedes persistence (aedes types that option as `any`); the
// broker module only passes it on to aedes and closes it with destroy().
declare module "aedes-persistence-level" {
  import type { ClassicLevel } from "classic-level";

  export interface LevelPersistence {
    /** Closes the database. */
    destroy(): Promise<void>;
  }

  const aedesPersistenceLevel: (db: ClassicLevel) => LevelPersistence;
  export default aedesPersistenceLevel;
}
