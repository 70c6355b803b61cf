// What the message rows can do, handed down once (rows are memoised: a
// stable context keeps them from re-rendering when the view does).

import { createContext, useContext } from 'react';
import type { Bucket } from '../../api';

export interface ChatActions {
  openReceipt: (requestId: string) => void;
  regenerate: (messageId: string, model?: string) => void;
  stop: (messageId: string) => void;
  selectBranch: (messageId: string, to: number) => void;
  continueWith: (messageId: string) => void;
  /** A new sibling of a user message, answered by the composer's model(s). */
  edit: (messageId: string, content: string) => void;
}

const noop = () => undefined;

export const ChatActionsContext = createContext<ChatActions>({
  openReceipt: noop,
  regenerate: noop,
  stop: noop,
  selectBranch: noop,
  continueWith: noop,
  edit: noop,
});

export const useChatActions = () => useContext(ChatActionsContext);

/** The balances (for a top-up where an answer was refused for an empty bucket). */
export interface BalancesValue {
  balances: Bucket[];
  refreshStatus: () => void;
  navigate: (to: string) => void;
}

export const BalancesContext = createContext<BalancesValue>({ balances: [], refreshStatus: noop, navigate: noop });
