import type { PublicAlertText, PublicHazard } from '../../broker/contract/index.js';
import type { PublicConfig } from '../../core/public-config.js';

type Words = Omit<PublicAlertText, 'lang'>;

/**
 * What residents are told, in English, when the config says nothing else:
 * short, about what to do, in the words of public warning practice (close
 * windows, stay away, let the fire brigade through, call only in danger).
 */
export const BUILT_IN_TEXTS: Readonly<Record<PublicHazard, Words>> = {
  fire: {
    event: 'Fire',
    headline: 'Fire in your neighbourhood',
    instruction:
      'The fire department is dealing with a fire near you. Keep windows and doors closed and turn off ventilation. Stay away from the area and keep the roads clear for emergency vehicles. Call the emergency number only if you are in danger.',
  },
  gas: {
    event: 'Gas leak',
    headline: 'Gas leak in your neighbourhood',
    instruction:
      'A gas leak is being dealt with near you. Do not light fires, smoke or use electrical switches near the area. Stay away from it and follow the instructions of the emergency services. Call the emergency number only if you are in danger.',
  },
  co: {
    event: 'Carbon monoxide',
    headline: 'Carbon monoxide in your neighbourhood',
    instruction:
      'Carbon monoxide has been detected in a building near you. If you have headache, dizziness or nausea, go out into fresh air and call the emergency number. Stay away from the area.',
  },
};

/** English words of an ended alert (other languages keep theirs; the page and CAP say it is over). */
const isEnglish = (lang: string) => lang === 'en' || lang.startsWith('en-');

/** The alert's words in each configured language: the config's texts over the built-in English. */
export function alertTexts(config: Pick<PublicConfig, 'languages' | 'texts'>, hazard: PublicHazard, ended: boolean): PublicAlertText[] {
  return config.languages.map((lang) => {
    const own = config.texts[hazard]?.[lang] ?? {};
    const base = BUILT_IN_TEXTS[hazard];
    const words: Words = { event: own.event ?? base.event, headline: own.headline ?? base.headline, instruction: own.instruction ?? base.instruction };
    if (ended && isEnglish(lang) && !own.headline) {
      return { lang, event: words.event, headline: `Over: ${words.headline}`.slice(0, 160), instruction: 'The danger is over: the warning has ended. Follow the emergency services if they tell you otherwise.' };
    }
    return { lang, ...words };
  });
}
